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
  Every batch, from any worker, is checked against it and comes out as NumPy
  (NOTE [ one batch checker ] in :mod:`feeders.structure`).
- ``shuffle=True`` permutes the *batch* order per epoch from ``(seed, epoch)``,
  as Keras shuffles a PyDataset's batches; each batch's own content is the
  sequence's business (``feeders.workers.batch_rng()`` gives it a generator
  seeded from ``(seed, epoch, index)``, the same whatever the worker count).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from feeders.sources._checks import check_bool, resolve_seed
from feeders.structure import Batch, BatchChecker, BatchSpec, first_spec
from feeders.workers import WorkerPool


class SequenceSource:
    """Batches ``sequence[i]`` fetched in order by a :class:`~feeders.workers.WorkerPool`.

    Args:
        sequence: has ``__len__`` (batches per epoch) and ``__getitem__(i)``
            returning ``x``, ``(x, y)`` or ``(x, y, sample_weight)``.
        workers, use_multiprocessing, max_queue_size: Keras' knobs, unchanged
            (``workers=0``: fetch in the calling thread).
        shuffle: permute the batch order each epoch.
        seed: for the batch order and the per-batch generators.
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
    ) -> None:
        self.sequence = sequence
        self.shuffle = check_bool(shuffle, "shuffle")
        self.seed = resolve_seed(seed)
        self._pool = WorkerPool(
            sequence,
            workers=workers,
            use_multiprocessing=use_multiprocessing,
            max_queue_size=max_queue_size,
            seed=self.seed,
        )
        self._first: tuple[BatchSpec, BatchChecker] | None = None
        self._peeked: Any = None
        self._ended_through = -1  # the last epoch whose on_epoch_end has run

    @property
    def num_batches(self) -> int:
        return len(self.sequence)

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
            index = self.order(0)[0]
            self._peeked = next(self._pool.run_epoch(0, [index]))
            spec = first_spec(self._peeked, lambda: f"{_name(index)} (epoch 0)")
            self._first = spec, BatchChecker(spec, _name, f"the first batch, sequence[{index}],")
        return self._first

    def order(self, n: int) -> list[int]:
        """Batch indices of epoch ``n``."""
        if not self.shuffle:
            return list(range(len(self.sequence)))
        return np.random.default_rng([self.seed, n]).permutation(len(self.sequence)).tolist()

    def epoch(self, n: int, start: int = 0) -> Iterator[Batch]:
        check = self._first_batch()[1]
        self._begin(n)
        order = self.order(n)[start:]
        if not order:
            self._end(n)
        for position, batch in enumerate(self._fetch(n, order)):
            if position == len(order) - 1:
                # The epoch's last batch is produced: its state may change now,
                # even if the consumer never asks past it (Keras does not).
                self._end(n)
            yield check(batch, order[position], n)

    def _fetch(self, n: int, order: list[int]) -> Iterator[Any]:
        peeked, self._peeked = self._peeked, None
        if peeked is not None and n == 0 and order == self.order(0):
            yield peeked
            order = order[1:]
        yield from self._pool.run_epoch(n, order)

    def _begin(self, n: int) -> None:
        """Catch up on ``on_epoch_end`` calls a consumer that stopped early skipped."""
        while self._ended_through < n - 1:
            self._end(self._ended_through + 1)
        set_epoch = getattr(self.sequence, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(n)
        self._pool.update(self.sequence)

    def _end(self, n: int) -> None:
        if n > self._ended_through:
            self._ended_through = n
            on_epoch_end = getattr(self.sequence, "on_epoch_end", None)
            if on_epoch_end is not None:
                on_epoch_end()

    def close(self) -> None:
        self._pool.close()


def _name(index: int) -> str:
    return f"the batch sequence[{index}]"


def from_sequence(
    sequence: Any,
    y: Any = None,
    *,
    sample_weight: Any = None,
    batch_size: int | None = None,
    shuffle: bool = False,
    seed: int | None = None,
    workers: int = 0,
    use_multiprocessing: bool = False,
    max_queue_size: int = 10,
) -> SequenceSource:
    """Registry factory for the ``"sequence"`` kind.

    ``y``, ``sample_weight`` and ``batch_size`` are always ``None`` here: its
    registry row refuses them (a Sequence returns whole batches).
    """
    return SequenceSource(
        sequence,
        workers=workers,
        use_multiprocessing=use_multiprocessing,
        max_queue_size=max_queue_size,
        shuffle=shuffle,
        seed=seed,
    )
