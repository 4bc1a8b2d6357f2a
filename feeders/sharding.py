"""Data-parallel shards: which part of one global ``(seed, epoch)`` order this process reads.

Why one module: a shard is an *order* question, like shuffling, so it is decided
where an epoch's order is made, once, by the rules here; the sources only ask.

NOTE [ the shard rule ]
Every process computes the same global order of epoch ``n`` (from ``(seed, n)``)
and keeps its own part of it:

- **samples** (arrays): the order is padded to a multiple of
  ``count * batch_size`` with *masked* slots, reshaped to
  ``(steps, count, batch_size)``, and process ``index`` takes column ``index``.
  A masked slot holds a real row (row 0) with ``sample_weight`` 0.
- **batches** (Sequences, ``ImageFileSequence``, tf.data): process ``index``
  takes global batches ``index, index + count, ...``; the last round is
  padded with a masked batch (a real batch, ``sample_weight`` 0), and a short
  batch is padded to the full batch size with masked rows.

So across processes every sample is trained exactly once per epoch (masked
slots weigh nothing in the loss), and every process runs the same number of
steps with the same batch shape: no process waits in a collective for a batch
that never comes. ``batch_size`` is per process, as in Keras' NumPy and
PyDataset adapters; ``global_batch_size=`` is ``batch_size * count``.

Imports NumPy only: worker processes import it (:class:`PaddedBatches`). The same
rule in TensorFlow ops, and the hand-off to a ``tf.distribute`` strategy, are in
:mod:`feeders.sharding_tf`.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from feeders.sources.array_likes import RaggedRows, SparseRows, as_numpy
from feeders.structure import ArraySpec, Batch, BatchSpec, Tree, flatten, map_tree

if TYPE_CHECKING:
    from feeders.service_graph import ServiceGraph

__all__ = ["Shard", "per_process_batch_size", "resolve_shard", "sample_plan"]

WEIGHT_DTYPE = np.dtype("float32")


@dataclass(frozen=True)
class Shard:
    """Process ``index`` of ``count`` data-parallel processes."""

    index: int
    count: int

    def __post_init__(self) -> None:
        for name, value in (("index", self.index), ("count", self.count)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise TypeError(
                    f"`shard` must be (index, count) of ints, but got {name}="
                    f"{type(value).__name__}. Pass e.g. shard=(jax.process_index(), "
                    "jax.process_count()) or shard='auto'."
                )
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(
                f"`shard` must be (index, count) with 0 <= index < count, but got "
                f"shard=({self.index}, {self.count}). Pass the process index and the number "
                "of processes, or shard='auto'."
            )
        object.__setattr__(self, "index", int(self.index))  # NumPy ints, as plain ints
        object.__setattr__(self, "count", int(self.count))

    def __str__(self) -> str:
        return f"process {self.index} of {self.count}"


def resolve_shard(shard: Any) -> Shard | None:
    """``shard=`` as given to ``adapt``: ``None``, ``(index, count)``, a :class:`Shard` or ``"auto"``.

    ``"auto"`` asks, in this order: the ``keras.distribution`` set on the JAX
    backend (``jax.process_index()``/``process_count()``), an initialised
    ``jax.distributed``, ``TF_CONFIG`` (chief first, then workers, as
    ``MultiWorkerMirroredStrategy`` numbers them), an initialised
    ``torch.distributed`` (rank, world size); with none of them, one process.
    It never initialises a framework (asking JAX before
    ``jax.distributed.initialize`` would pin it to one process).
    """
    if shard is None or isinstance(shard, Shard):
        return shard
    if isinstance(shard, str):
        if shard != "auto":
            raise ValueError(
                f"`shard` must be (index, count) or 'auto', but got shard={shard!r}. "
                "Pass shard='auto' to read the process index and count from the framework."
            )
        return _auto()
    if not isinstance(shard, tuple | list) or len(shard) != 2:
        raise TypeError(
            f"`shard` must be (index, count) or 'auto', but got {type(shard).__name__}"
            f"{'' if not isinstance(shard, tuple | list) else f' of length {len(shard)}'}. "
            "Pass e.g. shard=(0, 2)."
        )
    return Shard(*shard)


def _auto() -> Shard:
    jax = sys.modules.get("jax")
    if jax is not None and jax.distributed.is_initialized():
        return Shard(jax.process_index(), jax.process_count())
    tf_config = os.environ.get("TF_CONFIG")
    if tf_config:
        return _from_tf_config(tf_config)
    torch = sys.modules.get("torch")
    if (
        torch is not None
        and torch.distributed.is_available()
        and torch.distributed.is_initialized()
    ):
        return Shard(torch.distributed.get_rank(), torch.distributed.get_world_size())
    return Shard(0, 1)


def _from_tf_config(text: str) -> Shard:
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"`shard='auto'` read TF_CONFIG but it is not valid ({type(err).__name__}: {err}). "
            'Set it as {"cluster": {"worker": [...]}, "task": {"type": "worker", "index": i}}.'
        ) from err
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    if kind not in ("chief", "worker"):
        raise ValueError(
            f"`shard='auto'` found TF_CONFIG task type {kind!r}; only 'chief' and 'worker' "
            "tasks train data-parallel. Do not build a training feeder on this task."
        )
    return Shard(index if kind == "chief" else chiefs + index, chiefs + workers)


def check_shared_seed(seed: int | None, shuffle: object) -> None:
    """Shuffled shards need one global order, so every process must draw it from the same seed."""
    if shuffle and seed is None:
        raise ValueError(
            "A sharded feeder that shuffles needs `seed`, the same on every process (each "
            "process draws its part of one global order), but got seed=None. Pass e.g. "
            "seed=1337, or shuffle=False."
        )


def per_process_batch_size(
    batch_size: int | None, global_batch_size: int | None, shard: Shard | None
) -> int | None:
    """``batch_size`` (per process) from either keyword; ``global_batch_size`` must divide."""
    if global_batch_size is None:
        return batch_size
    if batch_size is not None:
        raise ValueError(
            f"Pass `batch_size` (per process) or `global_batch_size`, not both; but got "
            f"batch_size={batch_size!r}, global_batch_size={global_batch_size!r}."
        )
    count = 1 if shard is None else shard.count
    if isinstance(global_batch_size, bool) or not isinstance(global_batch_size, int):
        raise ValueError(
            f"`global_batch_size` must be a positive int, but got {global_batch_size!r}."
        )
    if global_batch_size <= 0 or global_batch_size % count:
        raise ValueError(
            f"`global_batch_size` must be a positive multiple of the {count} processes, but "
            f"got global_batch_size={global_batch_size}. Pass e.g. "
            f"global_batch_size={count * max(1, global_batch_size // count)}, or batch_size= "
            "per process."
        )
    return global_batch_size // count


def sample_plan(order: np.ndarray, shard: Shard, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """This process's ``(rows, mask)``, each ``(steps, batch_size)``, from the global ``order``.

    See NOTE [ the shard rule ]: masked slots (``mask`` False) hold row 0.
    """
    total, per_round = len(order), shard.count * batch_size
    steps = max(1, math.ceil(total / per_round))
    rows = np.zeros(steps * per_round, np.int64)
    rows[:total] = order
    mask = np.arange(steps * per_round) < total
    shape = (steps, shard.count, batch_size)
    return rows.reshape(shape)[:, shard.index], mask.reshape(shape)[:, shard.index]


def batch_steps(num_batches: int, shard: Shard) -> int:
    """Batches each process reads of an epoch of ``num_batches`` global batches."""
    return math.ceil(num_batches / shard.count)


def batch_plan(order: list[int], shard: Shard) -> list[int]:
    """This process's global batches of ``order``; a masked batch is ``len(order)`` (NOTE [ the shard rule ])."""
    total = len(order)
    padded = [*order, *[total] * (batch_steps(total, shard) * shard.count - total)]
    return padded[shard.index :: shard.count]


def masked_weights(mask: np.ndarray, sample_weight: Tree | None) -> Tree:
    """``sample_weight`` with masked rows at 0 (a weight of ones per row when there was none)."""
    weight = mask.astype(WEIGHT_DTYPE)
    if sample_weight is None:
        return weight
    return map_tree(lambda leaf: np.asarray(leaf, WEIGHT_DTYPE) * weight, sample_weight)


def masked_spec(spec: BatchSpec, batch_size: int | None) -> BatchSpec:
    """``spec`` with a fixed batch dimension and a ``sample_weight`` (masks need one)."""

    def fixed(leaf: ArraySpec) -> ArraySpec:
        return ArraySpec((batch_size, *leaf.shape[1:]), leaf.dtype, leaf.kind)

    weights = (
        ArraySpec((batch_size,), WEIGHT_DTYPE)
        if spec.sample_weight is None
        else map_tree(lambda leaf: ArraySpec((batch_size,), WEIGHT_DTYPE), spec.sample_weight)
    )
    return BatchSpec(map_tree(fixed, spec.x), map_tree(fixed, spec.y), weights)


def require_targets(spec: BatchSpec, what: str) -> None:
    """Masked padding lives in ``sample_weight``, which Keras only reads next to ``y``."""
    if spec.y is None:
        raise ValueError(
            f"A sharded {what} needs targets: padding is masked with sample_weight 0, which "
            "Keras reads only with y, but the batches have no y. Shard a source with y, or "
            "split inputs for predict yourself (e.g. x[index::count])."
        )


def pad_rows(batch: Batch, rows: int, real: bool) -> Batch:
    """``batch`` with ``sample_weight`` masking (all 0 when not ``real``), padded to ``rows``.

    A short batch is completed with copies of its row 0, masked; one copy per
    leaf, only for that batch.
    """
    x, y, sample_weight = batch
    have = np.shape(flatten(x)[0])[0]  # a scipy matrix has a shape but no len()
    mask = np.arange(max(rows, have)) < (have if real else 0)

    def pad(leaf: Any) -> Any:
        leaf = as_numpy(leaf, "x")  # sparse and ragged leaves become rows that gather
        if not isinstance(leaf, SparseRows | RaggedRows):
            leaf = np.asarray(leaf)
        if len(leaf) >= rows:
            return leaf
        if not isinstance(leaf, np.ndarray):  # sparse/ragged rows: a gather pads them
            return leaf[np.r_[np.arange(len(leaf)), np.zeros(rows - len(leaf), np.intp)]]
        return np.concatenate([leaf, np.repeat(leaf[:1], rows - len(leaf), axis=0)])

    if have < rows:
        x, y = map_tree(pad, x), map_tree(pad, y)
        sample_weight = None if sample_weight is None else map_tree(pad, sample_weight)
    return x, y, masked_weights(mask, sample_weight)


class ShardedFactory:
    """A generator factory that takes the shard, called as ``factory(shard)`` once per epoch.

    Why: only the user's code knows how to read a part of a stream; feeders
    hands it the :class:`Shard`. The factory must yield the same number of
    batches, of the same shapes, on every process (pad with ``sample_weight``
    0 where the data runs short), or a collective will wait at the epoch end.
    """

    def __init__(self, factory: Any, shard: Shard) -> None:
        self.factory, self.shard = factory, shard

    def __call__(self) -> Any:
        return self.factory(self.shard)


def call_with_shard(source: Any, shard: Shard) -> Any:
    """A generator factory that accepts an argument, as :class:`ShardedFactory`; else ``source``."""
    if (
        not callable(source)
        or isinstance(source, type)
        or hasattr(source, "__next__")
        or hasattr(type(source), "__getitem__")
    ):
        return source
    try:
        inspect.signature(source).bind(shard)
    except (TypeError, ValueError):
        return source
    return ShardedFactory(source, shard)


def shard_source(source: Any, shard: Shard) -> Any:
    """``source`` read as ``shard``, or the reason it cannot be.

    Raises:
        TypeError: the source kind cannot be sharded.
        ValueError: it is already sharded.
    """
    from feeders.capabilities import Shardable, Sharded

    current = source.process_shard if isinstance(source, Sharded) else None
    if current is not None and current != shard:
        raise ValueError(
            f"This feeder is already sharded ({current}); cannot shard it again as {shard}. "
            "Shard the unsharded feeder, or pass shard= once to feeders.adapt."
        )
    if current == shard:
        return source
    if not isinstance(source, Shardable):
        raise TypeError(
            f"`shard` is not supported by {type(source).__name__} sources. Shard the data "
            "before adapting it (e.g. x[index::count]), or use arrays, a Sequence, a generator "
            "factory that takes the shard, or a tf.data pipeline."
        )
    return source.shard(shard)


class PaddedBatches:
    """A Sequence's batches ``0..n-1`` and masked ones after them: what a sharded pool fetches.

    Index ``n`` (and above) is batch 0 with ``sample_weight`` 0; every batch is
    padded to ``batch_size`` rows when the sequence has that attribute (Keras-style
    sequences do), so every process sees one batch shape. Module level and
    NumPy-only, so worker processes unpickle it cheaply; it holds the user's
    sequence, so re-sending it (after ``on_epoch_end``) re-sends that state too.
    """

    def __init__(self, sequence: Any, num_batches: int) -> None:
        self.sequence = sequence
        self.num_batches = num_batches
        size = getattr(sequence, "batch_size", None)
        self.rows = int(size) if isinstance(size, int | np.integer) else 0

    def __len__(self) -> int:
        return self.num_batches + 1

    def __getitem__(self, index: int) -> Any:
        real = index < self.num_batches
        at = index if real else 0
        item = self.sequence[at]
        parts = tuple(item) if isinstance(item, tuple | list) else (item,)
        if not 1 <= len(parts) <= 3:
            return item  # malformed: the source's own check names it
        batch: Batch = (*parts, *(None,) * (3 - len(parts)))
        if batch[1] is None:
            raise ValueError(
                f"A sharded Sequence needs targets: `sequence[{at}]` returned x only, and the "
                "padding is masked with sample_weight, which Keras reads only with y. Return "
                "(x, y) from __getitem__."
            )
        return pad_rows(batch, self.rows, real)


class ShardedArrays:
    """An :class:`~feeders.sources.arrays.ArraySource` read as one shard (NOTE [ the shard rule ]).

    The arrays are not copied: each step gathers this process's ``batch_size``
    rows of the global order, masked slots included.
    """

    def __init__(self, source: Any, shard: Shard) -> None:
        if source.drop_remainder:
            raise ValueError(
                "`drop_remainder=True` drops samples, but a sharded feeder trains every sample "
                "once (the last global batch is padded with masked rows). Remove drop_remainder."
            )
        require_targets(source.spec, "arrays feeder")
        self.source, self.process_shard = source, shard
        self.batch_size, self.num_samples, self.seed = (
            source.batch_size,
            source.num_samples,
            source.seed,
        )
        self.partial_batch_size = None

    @property
    def num_batches(self) -> int:
        return max(
            1, math.ceil(int(self.num_samples) / (self.process_shard.count * int(self.batch_size)))
        )

    @property
    def spec(self) -> BatchSpec:
        return masked_spec(self.source.spec, self.batch_size)

    def epoch(self, n: int, start: int = 0) -> Iterator[Batch]:
        return self._steps(self.plan(n), start)

    def epoch_in_order(self, n: int, start: int = 0, *, counts: bool = True) -> Iterator[Batch]:
        return self._steps(self.plan(n, shuffle=False), start)

    def plan(self, n: int, *, shuffle: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, mask)`` of epoch ``n`` for this process (:func:`sample_plan`)."""
        order = self.source.order(n) if shuffle else None
        total = self.num_samples
        return sample_plan(
            np.arange(total) if order is None else order, self.process_shard, self.batch_size
        )

    def _steps(self, plan: tuple[np.ndarray, np.ndarray], start: int) -> Iterator[Batch]:
        rows, mask = plan
        for step in range(start, len(rows)):
            x, y, sample_weight = self.source.take(rows[step])
            yield x, y, masked_weights(mask[step], sample_weight)

    def service_graph(self, epoch: int, mode: str) -> ServiceGraph:
        """This shard's steps for tf.data service workers (:mod:`feeders.sharding_tf`)."""
        from feeders.sharding_tf import sharded_arrays_graph

        return sharded_arrays_graph(self, epoch)

    def split(self, at: int | float) -> tuple[ShardedArrays, ShardedArrays]:
        """Split the global data (as unsharded), then shard both parts."""
        first, second = self.source.split(at)
        return ShardedArrays(first, self.process_shard), ShardedArrays(second, self.process_shard)

    def close(self) -> None:
        self.source.close()


class StridedBatches:
    """A finite stream of batches read as one shard: global batches ``index::count``, padded.

    Why: a torch ``DataLoader`` or a grain dataset decides its own order and has
    no way to seek, so every process reads the whole pass (in the same seeded
    order) and keeps its global batches; a final round that is short gets a
    masked copy of the pass's first batch (NOTE [ the shard rule ]). Each
    process reads ``count`` times what it trains on: for large data, shard the
    loader's sampler instead (e.g. torch's ``DistributedSampler``).
    """

    def __init__(self, source: Any, shard: Shard) -> None:
        total = source.num_batches
        if total is None:
            raise ValueError(
                f"Sharding a {type(source).__name__} needs its number of batches per pass, "
                "but it is unknown. Pass num_batches=... to feeders.adapt."
            )
        spec = source.spec
        require_targets(spec, type(source).__name__)
        self.source, self.process_shard = source, shard
        self._plan = batch_plan(list(range(total)), shard)
        self._spec = masked_spec(spec, None)
        self.seed = getattr(source, "seed", None)

    @property
    def num_batches(self) -> int:
        return len(self._plan)

    @property
    def spec(self) -> BatchSpec:
        return self._spec

    def epoch(self, n: int, start: int = 0) -> Iterator[Batch]:
        wanted, total = set(self._plan[start:]), self.source.num_batches
        first: Batch | None = None
        rows = 0
        for index, batch in enumerate(self.source.epoch(n)):
            if first is None:
                first, rows = batch, len(flatten(batch[0])[0])
            if index in wanted:
                yield pad_rows(batch, rows, True)
        if total in wanted and first is not None:  # this process's masked batch
            yield pad_rows(first, rows, False)

    def shard(self, shard: Shard) -> StridedBatches:
        return shard_source(self, shard)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.source.close()
