"""Backends that build batches in this process: the calling thread (``workers=0``) or threads.

Why threads at all: a ``__getitem__`` that releases the GIL (NumPy, PIL, file
I/O) runs in parallel without pickling the dataset or copying batches.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import time
from collections.abc import Iterator
from typing import TypeAlias

from feeders.errors import raise_with_context, where
from feeders.workers._base import Batch, Dataset, EpochStats
from feeders.workers._fetch import fetch, local
from feeders.workers._interrupt import Bell, raise_if_interrupted, watch_sigint

__all__ = ["InCaller", "ThreadWorkers"]


class InCaller:
    """``workers=0``: every batch built in the calling thread, when asked for."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._job: tuple[Dataset, int, list[int], EpochStats] | None = None

    def begin(self, dataset: Dataset, epoch: int, order: list[int], stats: EpochStats) -> None:
        self._job = (dataset, epoch, order, stats)

    def next(self, position: int) -> Batch:
        assert self._job is not None
        dataset, epoch, order, stats = self._job
        stats.requests += 1
        started = time.perf_counter()
        try:
            batch = fetch(dataset, self._seed, epoch, order[position], legacy=False)
        except Exception as err:
            raise_with_context(err, where(None, order[position], epoch))
        stats.wait_s += time.perf_counter() - started
        stats.batches_per_worker[0] += 1
        return batch

    def update(self, dataset: Dataset) -> None:
        pass  # the next begin() gets it

    def abort(self) -> None:
        self._job = None

    def shutdown(self) -> None:
        self._job = None


_BELL_S = 0.2  # how often a blocked wait looks for Ctrl-C
_ThreadResult: TypeAlias = tuple[int, Batch, Exception | None]


class ThreadWorkers:
    """A thread pool, ``max_queue_size`` batches ahead; threads know their worker number."""

    def __init__(self, workers: int, max_queue_size: int, seed: int) -> None:
        self._workers = workers
        self._max_queue_size = max_queue_size
        self._seed = seed
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: collections.deque[concurrent.futures.Future[_ThreadResult]] = (
            collections.deque()
        )
        self._job: tuple[Dataset, int, list[int], EpochStats] | None = None
        self._bell = Bell()
        watch_sigint()

    def begin(self, dataset: Dataset, epoch: int, order: list[int], stats: EpochStats) -> None:
        if self._executor is None:
            numbers = itertools.count()
            self._executor = concurrent.futures.ThreadPoolExecutor(
                self._workers,
                thread_name_prefix="feeders-worker",
                initializer=_number_thread,
                initargs=(numbers,),
            )
        self._pending.clear()
        self._job = (dataset, epoch, order, stats)

    def next(self, position: int) -> Batch:
        assert self._executor is not None and self._job is not None
        epoch, order, stats = self._job[1:]
        self._top_up(position)
        stats.requests += 1
        stats.occupancy_sum += sum(future.done() for future in self._pending)
        started = time.perf_counter()
        worker, batch, error = self._result(self._pending.popleft())
        stats.wait_s += time.perf_counter() - started
        if error is not None:
            raise_with_context(error, where(worker, order[position], epoch))
        stats.batches_per_worker[worker] += 1
        self._top_up(position + 1)  # keep max_queue_size building while the consumer works
        return batch

    def _result(self, future: concurrent.futures.Future[_ThreadResult]) -> _ThreadResult:
        while True:
            try:
                return future.result(timeout=_BELL_S)
            except concurrent.futures.TimeoutError:
                raise_if_interrupted(self._bell)  # NOTE [ Ctrl-C in a pool thread ]

    def _top_up(self, yielded: int) -> None:
        assert self._executor is not None and self._job is not None
        dataset, epoch, order, _ = self._job
        pending = self._pending
        for index in order[yielded + len(pending) : yielded + self._max_queue_size]:
            pending.append(self._executor.submit(_thread_task, dataset, self._seed, epoch, index))

    def update(self, dataset: Dataset) -> None:
        pass  # threads share the parent's objects; the next begin() gets it

    def abort(self) -> None:
        """Drop queued batches; running ones finish in the background and are discarded."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._job = None

    def shutdown(self) -> None:
        self.abort()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._bell.close()


def _number_thread(numbers: Iterator[int]) -> None:
    local.worker = next(numbers)


def _thread_task(dataset: Dataset, seed: int, epoch: int, index: int) -> _ThreadResult:
    worker: int = local.worker
    try:
        return worker, fetch(dataset, seed, epoch, index, legacy=False), None
    except Exception as err:
        return worker, None, err
