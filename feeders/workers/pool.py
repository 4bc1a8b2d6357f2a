"""Fetch ``dataset[i]`` for an epoch's indices in threads or processes, in order, bounded.

Why a pool of our own: Keras' ``workers``/``use_multiprocessing`` pickle every
batch through a queue, hang when a worker is OOM-killed, and give every worker
the same random numbers. This pool keeps batches in order, moves them through
shared memory (:mod:`feeders.workers.shm`), seeds each batch from
``(seed, epoch, index)`` whatever the worker count (:func:`batch_rng`), and
turns every failure into an exception within seconds.

This module is the public face: argument checks, epoch bookkeeping and the
choice of backend. The backends live in :mod:`feeders.workers._threads`
(calling thread, threads) and :mod:`feeders.workers._processes` (processes).
"""

from __future__ import annotations

import random
import weakref
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

import numpy as np

from feeders.workers._base import Backend, Batch, Dataset, EpochStats
from feeders.workers._fetch import batch_rng
from feeders.workers._processes import ProcessWorkers
from feeders.workers._threads import InCaller, ThreadWorkers

__all__ = ["Batch", "Dataset", "WorkerPool", "batch_rng"]


class WorkerPool:
    """Yield ``dataset[i]`` for each index of an epoch, built ahead by ``workers`` workers.

    Args:
        dataset: indexable by batch number; must pickle (by value is fine:
            notebook classes, lambdas) when ``use_multiprocessing=True``.
        workers: threads or processes; ``0`` fetches in the calling thread, the
            reference behaviour the others match batch for batch.
        use_multiprocessing: processes instead of threads, for Python-heavy
            ``__getitem__`` that holds the GIL.
        max_queue_size: most batches in flight or ready at once (and the number
            of shared-memory slots); keep it ``>= workers`` so no worker idles.
        seed: base of the per-batch seeds; ``None`` draws one, kept in
            :attr:`seed` so a run can be repeated.

    Raises:
        TypeError: ``dataset`` has no ``__getitem__`` or cannot be pickled for
            worker processes; an argument has the wrong type.
        ValueError: ``workers``, ``max_queue_size`` or ``seed`` is out of range.

    Not thread-safe: one consumer iterates it. Use it as a context manager or
    call :meth:`close`; garbage collection also shuts the workers down.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        workers: int,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
        seed: int | None = None,
    ) -> None:
        _check_int("workers", workers, minimum=0, example="workers=4")
        _check_int("max_queue_size", max_queue_size, minimum=1, example="max_queue_size=10")
        if seed is not None:
            _check_int("seed", seed, minimum=0, example="seed=1337")
        _check_dataset(dataset)
        self.workers = int(workers)
        self.max_queue_size = int(max_queue_size)
        self.use_multiprocessing = bool(use_multiprocessing) and self.workers > 0
        # NOTE [ seed=None ]
        # A fresh 63-bit seed, recorded in `seed`: runs differ (as Keras users
        # expect of seed=None), yet any run can be repeated with seed=pool.seed.
        self.seed: int = int(seed) if seed is not None else random.SystemRandom().getrandbits(63)
        self._dataset = dataset
        self._backend: Backend
        if workers == 0:
            self._backend = InCaller(self.seed)
        elif use_multiprocessing:
            self._backend = ProcessWorkers(dataset, self.workers, self.max_queue_size, self.seed)
        else:
            self._backend = ThreadWorkers(self.workers, self.max_queue_size, self.seed)
        self._stats = EpochStats(epoch=-1, workers=self.workers)
        self._token = 0  # bumped by run_epoch() and close(): stale generators stop
        self._active = False  # an epoch is part-way through
        self._closed = False
        # NOTE [ finalizer holds no pool ]: it references the backend only, so the
        # pool can be collected, and collecting it stops the workers.
        self._finalizer = weakref.finalize(self, self._backend.shutdown)

    def run_epoch(self, epoch: int, indices: Sequence[int]) -> Iterator[Batch]:
        """Yield ``dataset[i]`` for ``i`` in ``indices``, strictly in that order.

        Later batches are built ahead (at most ``max_queue_size``) but never
        overtake. Calling it again abandons the previous epoch's generator.
        Leaving the generator early (``break``, an exception, garbage
        collection) stops the worker processes; the next epoch starts them again.

        Raises:
            RuntimeError: the pool is closed.
            ValueError: ``epoch`` or an index is negative.
            WorkerError: a worker process died (signal or exit code).
            TypeError: the dataset given to :meth:`update` cannot be pickled.
            SharedMemoryError: ``/dev/shm`` cannot hold the dataset's large arrays or the slots.
            Whatever ``dataset[i]`` raised, same type, with worker, batch and epoch
            (and the worker's traceback, for processes) in the message.
        """
        if self._closed:
            raise RuntimeError(
                "run_epoch() on a closed WorkerPool. Create a new WorkerPool for more epochs."
            )
        _check_int("epoch", epoch, minimum=0, example="epoch=0")
        order = [int(i) for i in indices]
        if order and min(order) < 0:
            raise ValueError(
                f"`indices` must be non-negative batch numbers, but got min(indices)={min(order)}. "
                "Map negative indices to len(dataset) + i first."
            )
        if self._active:
            self._active = False
            self._backend.abort()
        self._token += 1
        return self._epoch(self._token, epoch, order)

    def update(self, dataset: Dataset) -> None:
        """Use ``dataset`` from the next :meth:`run_epoch` on.

        Why: ``on_epoch_end()`` runs in the parent, and worker processes hold
        their own copy, so the next epoch first compares the dataset with what
        the workers hold and sends only what changed (NOTE [ ship what changed ]).

        Raises:
            TypeError: ``dataset`` cannot be indexed. (One that no longer
                pickles for processes raises TypeError from the next :meth:`run_epoch`.)
        """
        _check_dataset(dataset)
        self._backend.update(dataset)
        self._dataset = dataset

    def close(self) -> None:
        """Stop the workers and free shared memory; idempotent."""
        self._closed = True
        self._token += 1
        self._active = False
        self._finalizer()

    @property
    def stats(self) -> dict[str, Any]:
        """Counters of the current (or last) epoch.

        ``batches_per_worker`` (index = worker number), ``mean_queue_occupancy``
        (batches ready when the consumer asked for the next one; near 0 means
        the workers do not keep up) and ``consumer_wait_s`` (seconds the
        consumer was blocked waiting for a batch). Several :meth:`run_epoch`
        calls for the same epoch add up.
        """
        return self._stats.as_dict()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = type(self._backend).__name__.strip("_")
        return f"WorkerPool(workers={self.workers}, {kind}, max_queue_size={self.max_queue_size})"

    def _epoch(self, token: int, epoch: int, order: list[int]) -> Iterator[Batch]:
        self._check_current(token)
        self._active = True
        if self._stats.epoch != epoch:  # calls for one epoch add up (a source may peek a batch)
            self._stats = EpochStats(epoch=epoch, workers=self.workers)
        stats = self._stats
        if not order:
            self._active = False
            return
        finished = False
        try:
            self._backend.begin(self._dataset, epoch, order, stats)
            for position in range(len(order)):
                batch = self._backend.next(position)
                if position == len(order) - 1:
                    # NOTE [ an epoch ends at its last batch ]: nothing is in flight any
                    # more, so a consumer that takes exactly len(indices) batches with
                    # next() and never sees StopIteration does not cost a restart.
                    finished, self._active = True, False
                    yield batch
                    return
                yield batch
                self._check_current(token)
            finished = True
        finally:
            if token == self._token:
                self._active = False
                if not finished:
                    self._backend.abort()

    def _check_current(self, token: int) -> None:
        if token != self._token:
            raise RuntimeError(
                "This run_epoch() generator was superseded by a later run_epoch() or by close(). "
                "Iterate the newest generator."
            )


def _check_int(name: str, value: Any, *, minimum: int, example: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(
            f"`{name}` should be an integer >= {minimum}, but got {type(value).__name__} "
            f"{name}={value!r}. Pass e.g. {example}."
        )
    if value < minimum:
        raise ValueError(
            f"`{name}` should be an integer >= {minimum}, but got {name}={value!r}. "
            f"Pass e.g. {example}."
        )


def _check_dataset(dataset: Any) -> None:
    if not hasattr(type(dataset), "__getitem__"):
        raise TypeError(
            "`dataset` must be indexable by batch number (define __getitem__(self, index)), "
            f"but got {type(dataset).__name__}. Wrap it in a keras.utils.PyDataset or a "
            "class with __len__ and __getitem__."
        )
