"""What every tf.data service graph shares: the row-batch graph, the checks, the refusal.

Why its own module: :mod:`feeders.distributed` changes with the client (jobs, waits, Keras),
this one with what a worker may run. Only a dataset *graph* ships to a worker: Python
functions behind ``from_generator`` or ``py_function`` stay in the client process, and a
real worker fails with "Could not find callback with key=pyfunc_0". So each source kind
builds its own pure-TF graph (:class:`~feeders.capabilities.Servable`, in the source's own
module: arrays, sharded arrays, tf.data, ``ImageFileSequence``), or refuses with its reason
(:func:`not_servable`: generators, Python Sequences); :func:`service_graph` only asks.

NOTE [ service order ]: a registered graph is fixed, and every job starts it afresh, so a
seeded shuffle inside it would repeat the same order every epoch and, in
``parallel_epochs``, on every worker. And splits are handed out one RPC each (~10,000/s
measured on 2 cores), so per-sample splits cost seconds per epoch. Hence, for sources read
by row (arrays, image files): the split unit is one batch of row indices, cut from the
feeder's seeded order for the epoch it is at when distributed; each worker then re-mixes
the rows of ``REMIX_BATCHES`` consecutive batches with an unseeded shuffle (new per worker
and per job), and in ``parallel_epochs`` also draws its own batch order. Every row is still
delivered exactly once per epoch in ``distributed_epoch``, in the feeder's number of batches
(only the batch that holds the last split's rows is partial). The order through the service
is not reproducible (TensorFlow documents it as non-deterministic).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "NotServableError",
    "Rows",
    "ServiceGraph",
    "check_graph",
    "not_servable",
    "rows_graph",
    "service_graph",
]

REMIX_BATCHES = 8  # NOTE [ service order ]
_PY_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc", "GeneratorDataset"})
_SPLIT_SOURCES = frozenset(
    {
        "RangeDataset",
        "TensorSliceDataset",
        "TextLineDataset",
        "TFRecordDataset",
        "FixedLengthRecordDataset",
    }
)


class NotServableError(TypeError):
    """A feeder whose batches are made by Python code, which tf.data service cannot run."""


@dataclass(frozen=True)
class Rows:
    """A source read by row index: what the service graph needs (NOTE [ service order ]).

    ``fetch(indices)`` maps an int64 vector of rows to ``(x,)``, ``(x, y)`` or
    ``(x, y, sample_weight)`` with TensorFlow ops only.
    """

    num_samples: int
    batch_size: int
    order: np.ndarray | None
    shuffle: bool
    drop_remainder: bool
    fetch: Callable[[Any], tuple[Any, ...]]


@dataclass(frozen=True)
class ServiceGraph:
    """What workers run for a feeder, and what a client should expect of each job.

    ``num_batches``/``batch_size``: batches per epoch and rows per full batch, when known.
    """

    dataset: Any
    num_batches: int | None
    batch_size: int | None


_WHY = (
    "only a dataset graph ships to a tf.data service worker: Python code (from_generator, "
    "py_function, __getitem__) stays in this process, and a real worker fails with "
    "'Could not find callback with key=pyfunc_0'"
)
_FIX = (
    "Build the input as a tf.data pipeline (feeders.adapt(tf.data.Dataset...)), use "
    "feeders.ImageFileSequence for image files (its pure-TF decode runs on the workers), or "
    "keep Python loading on this host with feeders' worker pool (feeders.adapt(..., workers=N))."
)


def not_servable(what: str) -> NotServableError:
    """The refusal of a source whose batches come from ``what`` (e.g. "a Python generator").

    Sources that cannot be served implement :class:`~feeders.capabilities.Servable` by
    raising this, so the reason is theirs and the wording and the fix are one.
    """
    return NotServableError(
        f"`feeder` cannot be served through tf.data service: its batches come from {what}, "
        f"and {_WHY}. {_FIX}"
    )


def service_graph(source: Any, epoch: int, mode: str) -> ServiceGraph:
    """The pure-TF dataset of ``source``'s batches that workers run, for epoch ``epoch``.

    Each source kind builds its own (:class:`~feeders.capabilities.Servable`); a source
    without that capability is refused. Every graph, a plug-in's too, then passes
    :func:`check_graph` here rather than failing on a worker (one more serialisation of
    the graph: ~0.6 s for 188 MB of arrays, once per ``distribute()``).

    Raises:
        NotServableError: ``source`` makes its batches with Python code (see the message).
        ValueError: see :func:`check_graph`.
    """
    from feeders.capabilities import Servable

    if not isinstance(source, Servable):
        raise not_servable(f"a {type(source).__name__} source with no TF-graph form")
    graph = source.service_graph(epoch, mode)
    check_graph(graph.dataset, mode)
    return graph


def rows_graph(rows: Rows, mode: str) -> ServiceGraph:
    """Batches of ``rows`` as a graph whose splits are batches (NOTE [ service order ])."""
    import tensorflow as tf

    size, n = rows.batch_size, rows.num_samples
    order = tf.constant(np.arange(n) if rows.order is None else rows.order, tf.int64)
    count = n // size if rows.drop_remainder else math.ceil(n / size)
    batches = tf.data.Dataset.range(count)
    if mode == "parallel_epochs" and rows.shuffle:
        batches = _unseeded_shuffle(batches, count)
    index = batches.map(lambda b: order[b * size : tf.minimum((b + 1) * size, n)])
    if rows.shuffle:
        index = _unseeded_shuffle(index.unbatch(), REMIX_BATCHES * size)
        index = index.batch(size, drop_remainder=rows.drop_remainder)
    return ServiceGraph(index.map(rows.fetch, num_parallel_calls=tf.data.AUTOTUNE), count, size)


def _unseeded_shuffle(dataset: Any, buffer: int) -> Any:
    """``dataset.shuffle(buffer)`` with seeds (0, 0): a fresh random order per worker and job.

    Why the raw op: ``Dataset.shuffle(seed=None)`` derives fixed seeds from TensorFlow's
    global seed when one is set (``keras.utils.set_random_seed``), which would give every
    worker the same order.
    """
    import tensorflow as tf

    specs = tf.nest.flatten(dataset.element_spec)
    variant = tf.raw_ops.ShuffleDataset(
        input_dataset=tf.data.experimental.to_variant(dataset),
        buffer_size=tf.constant(buffer, tf.int64),
        seed=tf.constant(0, tf.int64),
        seed2=tf.constant(0, tf.int64),
        reshuffle_each_iteration=True,
        output_types=[spec.dtype for spec in specs],
        output_shapes=[spec.shape for spec in specs],
    )
    return tf.data.experimental.from_variant(variant, dataset.element_spec)


def check_graph(dataset: Any, mode: str) -> None:
    """Refuse, before registering, a user pipeline that cannot run right on a worker.

    Raises:
        NotServableError: it calls Python (``from_generator``, ``py_function``...).
        ValueError: in ``distributed_epoch``, it zips several splittable sources, whose
            splits the dispatcher hands out independently, so rows would be mis-paired.
    """
    import tensorflow as tf

    serialized = tf.raw_ops.DatasetToGraphV2(
        input_dataset=tf.data.experimental.to_variant(dataset), external_state_policy=1
    )
    graph = tf.compat.v1.GraphDef.FromString(serialized.numpy())
    ops = {node.op for node in graph.node}
    ops |= {node.op for fn in graph.library.function for node in fn.node_def}
    python = sorted(ops & _PY_OPS)
    if python:
        raise NotServableError(
            f"`feeder` cannot be served through tf.data service: its tf.data pipeline calls "
            f"Python ({', '.join(python)} ops), and {_WHY}. {_FIX}"
        )
    if mode != "distributed_epoch":
        return
    nodes = {node.name: node for node in graph.node}

    def sources(name: str) -> set[str]:
        node = nodes[name.lstrip("^").split(":")[0]]
        found = {node.name} if node.op in _SPLIT_SOURCES else set()
        return found.union(*(sources(i) for i in node.input if i.split(":")[0] in nodes))

    for node in graph.node:
        if node.op == "ZipDataset" and len(sources(node.name)) > 1:
            raise ValueError(
                "`processing_mode='distributed_epoch'` hands out the splits of each source "
                "dataset independently, but this pipeline zips several sources "
                f"({len(sources(node.name))}), so a worker would pair rows that do not belong "
                "together. Zip inside one source: Dataset.from_tensor_slices((x, y)), or use "
                "processing_mode='parallel_epochs'."
            )
