"""``keras.utils.Sequence``/``PyDataset`` (anything with ``__len__`` + ``__getitem__``) as a source.

Why not Keras' own adapter: it calls ``__getitem__(0)`` before training and
``on_epoch_end`` before training and twice per validation run, its workers all
draw the same random numbers, and a killed worker hangs ``fit``. Here:

- ``on_epoch_end`` runs exactly once per epoch: right after the epoch's last
  batch is fetched (nothing of that epoch is in flight any more), or, when a
  consumer stops early (``steps_per_epoch``), before the next epoch's first
  batch is requested. A sequence with
  ``set_epoch(n)`` (e.g. :class:`feeders.ImageFileSequence`) is also told
  which epoch starts, so a resumed run sees the state of that epoch.
- What ``on_epoch_end`` changed reaches the workers: the parent re-sends the
  sequence (pickled, only when its bytes changed) to every worker process
  before the next epoch (:meth:`feeders.workers.WorkerPool.update`).
- The batch spec comes from the first batch of epoch 0, fetched once and then
  yielded as that batch, so no ``__getitem__`` call is hidden or repeated.
- ``shuffle=True`` permutes the *batch* order per epoch from ``(seed, epoch)``,
  as Keras shuffles a PyDataset's batches; each batch's own content is the
  sequence's business (``feeders.workers.batch_rng()`` gives it a generator
  seeded from ``(seed, epoch, index)``, the same whatever the worker count).
- As Keras reads a ``PyDataset``: its length is ``len()`` or its
  ``num_batches`` property (``None``: infinite, read with ``steps_per_epoch``);
  ``on_epoch_begin()`` runs before an epoch's first batch is requested; its own
  ``workers``/``use_multiprocessing``/``max_queue_size`` apply unless
  ``adapt`` is given them (a pool when ``workers > 1``, or ``workers > 0``
  with processes, as in Keras).
- An inference pass (``predict``, ``evaluate``, validation) reads the batches
  in order as epoch 0 and runs no epoch hooks: it is not a training epoch.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from feeders.rescaling import rescale_of
from feeders.sharding import PaddedBatches, Shard, batch_plan, batch_steps
from feeders.sources._checks import check_bool, resolve_seed
from feeders.structure import Batch, BatchChecker, BatchSpec, first_spec
from feeders.workers import WorkerPool

if TYPE_CHECKING:
    from feeders.service_graph import ServiceGraph


class SequenceSource:
    """Batches ``sequence[i]`` fetched in order by a :class:`~feeders.workers.WorkerPool`.

    Args:
        sequence: has ``__len__`` or ``num_batches`` (batches per epoch;
            ``None``: infinite) and ``__getitem__(i)`` returning ``x``,
            ``(x, y)`` or ``(x, y, sample_weight)``.
        workers, use_multiprocessing, max_queue_size: Keras' knobs, unchanged
            (``workers=0``: fetch in the calling thread).
        shuffle: permute the batch order each epoch.
        seed: for the batch order and the per-batch generators.
        shard: read only this process's batches of each epoch's global order
            (NOTE [ the shard rule ] in :mod:`feeders.sharding`).
    """

    def __init__(
        self,
        sequence: Any,
        *,
        workers: int = 0,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
        shuffle: bool = False,
        seed: int | None = None,
        shard: Shard | None = None,
    ) -> None:
        self.sequence = sequence
        count = _batch_count(sequence)
        if count == 0:
            raise ValueError(
                f"`sequence` has no batches: len({type(sequence).__name__}) is 0. Give it at "
                "least one batch (check the data it was built from and its batch size)."
            )
        if count is None and shuffle:
            raise ValueError(
                f"`shuffle=True` needs a finite sequence, but {type(sequence).__name__}."
                "num_batches is None (infinite). Pass shuffle=False and shuffle inside "
                "__getitem__ (feeders.workers.batch_rng() gives each batch its own generator)."
            )
        if count is None and shard is not None:
            raise ValueError(
                f"A sharded Sequence needs a finite length, but {type(sequence).__name__}."
                "num_batches is None (infinite). Give it a length, or shard inside __getitem__."
            )
        self.shuffle = check_bool(shuffle, "shuffle")
        self.seed = resolve_seed(seed)
        self.process_shard = shard
        # What the pool fetches: the sequence, or with a shard its batches plus a masked one.
        self._fetched = sequence if shard is None else PaddedBatches(sequence, count or 0)
        self._pool = WorkerPool(
            self._fetched,
            workers=workers,
            use_multiprocessing=use_multiprocessing,
            max_queue_size=max_queue_size,
            seed=self.seed,
        )
        self._first: tuple[BatchSpec, BatchChecker] | None = None
        self._peeked: tuple[int, Any] | None = None
        self._ended_through = -1  # the last epoch whose on_epoch_end has run
        self._begun_early = False  # epoch 0 was begun for the spec's peek

    @property
    def num_batches(self) -> int | None:
        count = _batch_count(self.sequence)
        if self.process_shard is None or count is None:
            return count
        return batch_steps(count, self.process_shard)

    @property
    def rescale(self) -> float | None:
        """The sequence's :class:`~feeders.capabilities.Rescaled` factor (uint8 ``x`` → float32)."""
        return rescale_of(self.sequence)

    @property
    def pool(self) -> WorkerPool:
        """The worker pool (its ``stats`` say how the last epoch went)."""
        return self._pool

    @property
    def spec(self) -> BatchSpec:
        return self._first_batch()[0]

    def _first_batch(self) -> tuple[BatchSpec, BatchChecker]:
        """The spec and checker of every batch, from the first batch (fetched once, kept)."""
        if self._first is None:
            index = self.order(0)[0] if self.num_batches is not None else 0
            self._begin(0)  # the peek is epoch 0's first request: on_epoch_begin comes first
            self._begun_early = True
            batch = next(self._pool.run_epoch(0, [index]))
            self._peeked = (index, batch)
            spec = first_spec(batch, lambda: f"{_name(index)} (epoch 0)")
            self._first = spec, BatchChecker(spec, _name, f"the first batch, sequence[{index}],")
        return self._first

    def order(self, n: int, *, shuffle: bool = True) -> list[int]:
        """Batch indices of epoch ``n`` (of a finite sequence)."""
        count = _batch_count(self.sequence) or 0
        if not (self.shuffle and shuffle):
            order = list(range(count))
        else:
            order = np.random.default_rng([self.seed, n]).permutation(count).tolist()
        return order if self.process_shard is None else batch_plan(order, self.process_shard)

    def epoch(self, n: int, start: int = 0) -> Iterator[Batch]:
        return self._epoch(n, start, shuffle=True)

    def epoch_in_order(self, n: int, start: int = 0, *, counts: bool = True) -> Iterator[Batch]:
        """Epoch ``n`` unshuffled; ``counts=False``: an inference pass (epoch 0, no epoch hooks)."""
        if counts:
            return self._epoch(n, start, shuffle=False)
        return self._inference(start)

    def _epoch(self, n: int, start: int, *, shuffle: bool) -> Iterator[Batch]:
        check = self._first_batch()[1]
        self._begin(n)
        if self.num_batches is None:
            yield from self._endless(n, start)
            return
        order = self.order(n, shuffle=shuffle)[start:]
        if not order:
            self._end(n)
        for position, batch in enumerate(self._fetch(n, order)):
            if position == len(order) - 1:
                # The epoch's last batch is produced: its state may change now,
                # even if the consumer never asks past it (Keras does not).
                self._end(n)
            yield check(batch, order[position], n)

    def _inference(self, start: int) -> Iterator[Batch]:
        """Epoch 0 in index order, whatever epoch training reached, and no epoch hooks.

        A sequence with ``set_epoch`` (e.g. an ``ImageFileSequence`` that shuffles
        its files) is shown epoch 0 for the pass and given its training epoch back
        after it, so predictions do not depend on how far training got.
        """
        check = self._first_batch()[1]
        set_epoch = getattr(self.sequence, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(0)
        self._pool.update(self._fetched)  # what the last on_epoch_end (or set_epoch) changed
        try:
            if self.num_batches is None:
                yield from self._endless(0, start)
                return
            order = self.order(0, shuffle=False)[start:]
            for position, batch in enumerate(self._fetch(0, order)):
                yield check(batch, order[position], 0)
        finally:
            if set_epoch is not None:
                set_epoch(self._ended_through + 1)
                self._pool.update(self._fetched)

    def _endless(self, n: int, start: int) -> Iterator[Batch]:
        """An infinite sequence: batches ``start, start + 1, ...`` in chunks of ``ENDLESS_CHUNK``."""
        check = self._first_batch()[1]
        for low in itertools.count(start, ENDLESS_CHUNK):
            order = list(range(low, low + ENDLESS_CHUNK))
            for position, batch in enumerate(self._fetch(n, order)):
                yield check(batch, order[position], n)

    def _fetch(self, n: int, order: list[int]) -> Iterator[Any]:
        peeked, self._peeked = self._peeked, None
        if peeked is not None and n == 0 and order and order[0] == peeked[0]:
            yield peeked[1]  # the batch the spec was read from: fetched once, used once
            order = order[1:]
        yield from self._pool.run_epoch(n, order)

    def _begin(self, n: int) -> None:
        """Catch up on ``on_epoch_end`` calls a consumer that stopped early skipped; begin ``n``."""
        while self._ended_through < n - 1:
            self._end(self._ended_through + 1)
        set_epoch = getattr(self.sequence, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(n)
        begun_early, self._begun_early = self._begun_early, False
        on_epoch_begin = getattr(self.sequence, "on_epoch_begin", None)
        if on_epoch_begin is not None and not (begun_early and n == 0):
            on_epoch_begin()
        self._pool.update(self._fetched)

    def _end(self, n: int) -> None:
        if n > self._ended_through:
            self._ended_through = n
            on_epoch_end = getattr(self.sequence, "on_epoch_end", None)
            if on_epoch_end is not None:
                on_epoch_end()

    def service_graph(self, epoch: int, mode: str) -> ServiceGraph:
        """The sequence's own graph when it has one (``ImageFileSequence``), else refused.

        Raises:
            NotServableError: the sequence is sharded (its graph would read every batch),
                or its batches are ``__getitem__``, Python code.
        """
        from feeders.capabilities import Servable
        from feeders.service_graph import NotServableError, not_servable

        if self.process_shard is not None:
            raise NotServableError(
                "`feeder` cannot be served through tf.data service: it is a sharded Sequence, "
                "and its service graph would read every batch, not this shard. Serve a sharded "
                "arrays or tf.data feeder, or read this shard on this host with feeders' worker "
                "pool (feeders.adapt(..., workers=N, shard=...))."
            )
        if isinstance(self.sequence, Servable):
            return self.sequence.service_graph(epoch, mode)
        raise not_servable("a Python Sequence (its __getitem__)")

    def shard(self, shard: Shard) -> SequenceSource:
        """A source over the same sequence read as ``shard``, with its own pool."""
        pool = self._pool
        return SequenceSource(
            self.sequence,
            workers=pool.workers,
            use_multiprocessing=pool.use_multiprocessing,
            max_queue_size=pool.max_queue_size,
            shuffle=self.shuffle,
            seed=self.seed,
            shard=shard,
        )

    def close(self) -> None:
        self._pool.close()


def _name(index: int) -> str:
    return f"the batch sequence[{index}]"


ENDLESS_CHUNK = 256  # batches asked of the pool at a time for an infinite sequence


def _batch_count(sequence: Any) -> int | None:
    """Batches per epoch as Keras reads them: ``len()``, else the ``num_batches`` property."""
    if hasattr(type(sequence), "__len__"):
        return len(sequence)
    count = sequence.num_batches
    if count is not None and (isinstance(count, bool) or not isinstance(count, int | np.integer)):
        raise TypeError(
            f"`{type(sequence).__name__}.num_batches` must be an int or None (infinite), but "
            f"got {type(count).__name__}. Return the number of batches per epoch."
        )
    return None if count is None else int(count)


def _own_knobs(sequence: Any) -> tuple[int, bool, int]:
    """A ``keras.utils.PyDataset``'s own ``workers``/``use_multiprocessing``/``max_queue_size``.

    As Keras reads them: a pool only when ``workers > 1``, or ``workers > 0``
    with processes; otherwise the calling thread. Other objects: ``(0, False, 10)``.
    """
    from keras.utils import PyDataset

    if not isinstance(sequence, PyDataset):
        return 0, False, 10
    workers, processes = int(sequence.workers or 0), bool(sequence.use_multiprocessing)
    pooled = workers > 1 or (workers > 0 and processes)
    return (workers if pooled else 0), (processes and pooled), int(sequence.max_queue_size or 10)


def from_sequence(
    sequence: Any,
    y: Any = None,
    *,
    sample_weight: Any = None,
    batch_size: int | None = None,
    shuffle: bool = False,
    seed: int | None = None,
    workers: int | None = None,
    use_multiprocessing: bool | None = None,
    max_queue_size: int | None = None,
) -> SequenceSource:
    """Registry factory for the ``"sequence"`` kind; unset knobs come from the PyDataset.

    ``y``, ``sample_weight`` and ``batch_size`` are always ``None`` here: its
    registry row refuses them (a Sequence returns whole batches).
    """
    own_workers, own_processes, own_queue = _own_knobs(sequence)
    return SequenceSource(
        sequence,
        workers=own_workers if workers is None else workers,
        use_multiprocessing=own_processes if use_multiprocessing is None else use_multiprocessing,
        max_queue_size=own_queue if max_queue_size is None else max_queue_size,
        shuffle=shuffle,
        seed=seed,
    )
