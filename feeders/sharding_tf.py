"""The shard rule (NOTE [ the shard rule ] in :mod:`feeders.sharding`) for TensorFlow.

Why its own module: :mod:`feeders.sharding` is imported by worker processes and the
no-TensorFlow install; this one imports TensorFlow (lazily, inside each function) and
changes with ``tf.data`` and ``tf.distribute``, not with the rule.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from feeders.sharding import Shard

if TYPE_CHECKING:
    from feeders.service_graph import ServiceGraph
    from feeders.sharding import ShardedArrays

__all__ = ["per_worker_dataset", "sharded_arrays_graph", "tf_sharded_dataset"]


def per_worker_dataset(dataset: Any, model: Any) -> Any:
    """A sharded pass's ``tf.data.Dataset`` as the per-worker input of ``model``'s strategy.

    Why: under ``MultiWorkerMirroredStrategy`` Keras calls
    ``experimental_distribute_dataset``, which takes each batch as the *global*
    batch, auto-shards it again and splits it across workers. A shard is already
    this worker's part, so it goes through ``distribute_datasets_from_function``,
    which Keras uses as it is; without a multi-replica strategy it is unchanged.
    """
    import tensorflow as tf

    strategy = getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()
    if strategy.num_replicas_in_sync <= 1:
        return dataset
    return strategy.distribute_datasets_from_function(lambda _: dataset)


def tf_sharded_dataset(
    dataset: Any, shard: Shard, *, arity: int, total: int, batch_size: int | None
) -> Any:
    """A ``tf.data`` pipeline's shard: its ``shard`` op, weighted, padded to equal steps.

    Elements (``batch_size`` given: samples, else batches) ``index, index +
    count, ...`` with weight 1; then copies of the first element with weight 0
    until every process has the same number of batches (NOTE [ the shard rule ],
    by elements: ``ds.shard`` is TensorFlow's partition). The pipeline's order
    must be the same on every process (no unseeded reshuffling).

    Raises:
        ValueError: the size is unknown (padding needs it), or there are no targets.
    """
    import tensorflow as tf

    if total < 0:
        raise ValueError(
            "Sharding a tf.data pipeline needs its size, to give every process the same "
            f"number of batches, but its cardinality is {'infinite' if total == -1 else 'unknown'}. "
            "Pass cardinality=<number of elements> to feeders.adapt (before .repeat()), or "
            "shard it yourself with ds.shard(count, index) and the same batches everywhere."
        )
    if arity < 2:
        raise ValueError(
            "A sharded tf.data pipeline needs targets: padding is masked with sample_weight "
            "0, which Keras reads only with y, but its elements are x only. Yield (x, y)."
        )
    per_process = math.ceil(total / shard.count)
    real = math.ceil((total - shard.index) / shard.count)
    padded = per_process if batch_size is None else -(-per_process // batch_size) * batch_size

    # A batched pipeline's short batch is padded to the first batch's size (read once, here).
    full = None if batch_size is not None else _first_rows(dataset)

    def weighted(value: float) -> Any:
        def weigh(x: Any, y: Any, *weight: Any) -> Any:
            if full is None:
                ones = tf.constant(value)
            else:
                rows = tf.shape(tf.nest.flatten(x)[0])[0]
                short = full - rows

                def pad(t: Any) -> Any:
                    return tf.concat([t, tf.repeat(t[:1], short, axis=0)], axis=0)

                x, y = tf.nest.map_structure(pad, x), tf.nest.map_structure(pad, y)
                weight = tuple(tf.nest.map_structure(pad, w) for w in weight)
                ones = tf.concat([tf.fill([rows], value), tf.zeros([short])], axis=0)
            if not weight:
                return x, y, ones
            return x, y, tf.nest.map_structure(lambda w: tf.cast(w, tf.float32) * ones, weight[0])

        return tf.autograph.experimental.do_not_convert(weigh)

    mine = dataset.shard(shard.count, shard.index).map(weighted(1.0))
    if padded > real:
        mine = mine.concatenate(dataset.take(1).map(weighted(0.0)).repeat(padded - real))
    return mine.apply(tf.data.experimental.assert_cardinality(padded))


def sharded_arrays_graph(arrays: ShardedArrays, epoch: int) -> ServiceGraph:
    """This process's steps of ``epoch`` for tf.data service workers, one split per step.

    The workers gather; the trainer still receives exactly its shard's rows, masked slots
    weighing 0, in the same number of steps as every other trainer (the order of the
    steps through the service is not reproducible).
    """
    import tensorflow as tf

    from feeders.service_graph import ServiceGraph

    rows, mask = arrays.plan(epoch)
    fetch = arrays.source.service_fetch()

    def batch(index: Any, keep: Any) -> tuple[Any, ...]:
        parts = fetch(index)
        weight = tf.cast(keep, tf.float32)
        if len(parts) == 2:
            return (*parts, weight)
        return (*parts[:2], tf.nest.map_structure(lambda w: w * weight, parts[2]))

    dataset = tf.data.Dataset.from_tensor_slices((rows, mask))
    dataset = dataset.map(batch, num_parallel_calls=tf.data.AUTOTUNE)
    return ServiceGraph(dataset, len(rows), arrays.batch_size)


def _first_rows(dataset: Any) -> int:
    import tensorflow as tf

    for element in dataset.take(1):
        return int(tf.shape(tf.nest.flatten(element)[0])[0])
    raise ValueError("Sharding a tf.data pipeline needs at least one batch, but it is empty.")
