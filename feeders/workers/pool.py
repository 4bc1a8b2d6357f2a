"""Fetch ``dataset[i]`` for an epoch's indices in threads or processes, in order, bounded.

Why a pool of our own: Keras' ``workers``/``use_multiprocessing`` pickle every
batch through a queue, hang when a worker is OOM-killed, and give every worker
the same random numbers. This pool keeps batches in order, moves them through
shared memory (:mod:`feeders.workers.shm`), seeds each batch from
``(seed, epoch, index)`` whatever the worker count, and turns every failure
into an exception within seconds.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import hashlib
import itertools
import logging
import multiprocessing
import os
import pickle
import random
import signal
import struct
import sys
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any, Protocol, TypeAlias

import numpy as np

from feeders.errors import RemoteFailure, WorkerError, raise_with_context, where
from feeders.workers.shm import SlotPool, SlotWriter, slot_bytes_for

__all__ = ["Batch", "Dataset", "WorkerPool", "batch_rng"]

logger = logging.getLogger(__name__)

Batch: TypeAlias = Any
"""What ``dataset[i]`` returns: an ndarray, or a tuple/list/dict nesting of ndarrays."""

_POLL_S = 1.0  # how often a blocked wait re-checks that every worker is alive
_JOIN_S = 0.5  # how long shutdown lets idle workers exit on their own before SIGTERM


class Dataset(Protocol):
    """Anything indexable by batch number; ``keras.utils.PyDataset`` qualifies."""

    def __getitem__(self, index: int, /) -> Batch: ...


# -- per-batch random numbers -------------------------------------------------------

_local = threading.local()


def batch_rng() -> np.random.Generator:
    """The random generator of the batch being fetched; call it in ``dataset.__getitem__``.

    Why: it is seeded from ``SeedSequence([seed, epoch, index])``, so a batch's
    augmentation is the same whichever worker (thread or process) builds it and
    however many there are, and differs across batches and epochs. Outside a
    pool's fetch it returns a fresh, unseeded generator, so ``dataset[i]`` still
    works when called directly (but is then not reproducible).
    """
    rng: np.random.Generator | None = getattr(_local, "rng", None)
    return rng if rng is not None else np.random.default_rng()


def _fetch(dataset: Dataset, seed: int, epoch: int, index: int, *, legacy: bool) -> Batch:
    """``dataset[index]`` with the batch's generator installed (and restored after)."""
    sequence = np.random.SeedSequence([seed, epoch, index])
    if legacy:
        # NOTE [ seeding the legacy global RNGs ]
        # Only in worker processes, whose globals are their own: seeding them in
        # the user's process (workers=0) or in shared threads would clobber the
        # user's own random state and still not be reproducible.
        # Two different seeds: both are Mersenne Twisters seeded the same way, so one
        # seed would make random.random() repeat np.random.random().
        numpy_seq, python_seq = sequence.spawn(2)
        np.random.seed(numpy_seq.generate_state(2))
        random.seed(int.from_bytes(python_seq.generate_state(2).tobytes(), "little"))
    previous = getattr(_local, "rng", None)
    _local.rng = np.random.Generator(np.random.PCG64(sequence))
    try:
        return dataset[index]
    finally:
        _local.rng = previous


@dataclass
class _EpochStats:
    epoch: int
    workers: int
    batches_per_worker: list[int] = field(default_factory=list)
    requests: int = 0
    occupancy_sum: int = 0
    wait_s: float = 0.0

    def __post_init__(self) -> None:
        self.batches_per_worker = [0] * max(self.workers, 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "batches": sum(self.batches_per_worker),
            "batches_per_worker": list(self.batches_per_worker),
            "mean_queue_occupancy": self.occupancy_sum / max(self.requests, 1),
            "consumer_wait_s": self.wait_s,
        }


class _Backend(Protocol):
    """How batches get built: in the calling thread, in threads, or in processes."""

    def begin(self, dataset: Dataset, epoch: int, order: list[int], stats: _EpochStats) -> None:
        """Prepare an epoch (start workers if needed)."""

    def next(self, position: int) -> Batch:
        """The batch at ``position`` of the epoch, waiting for it if needed."""

    def update(self, dataset: Dataset) -> None:
        """Take the user's new dataset state (pickle it now, for processes)."""

    def abort(self) -> None:
        """Drop the rest of an epoch left part-way."""

    def shutdown(self) -> None:
        """Release everything; idempotent, and safe from a finalizer."""


# -- the pool -----------------------------------------------------------------------


class WorkerPool:
    """Yield ``dataset[i]`` for each index of an epoch, built ahead by ``workers`` workers.

    Args:
        dataset: indexable by batch number; must pickle when
            ``use_multiprocessing=True`` (define its class at module level).
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
        # NOTE [ seed=None ]
        # A fresh 63-bit seed, recorded in `seed`: runs differ (as Keras users
        # expect of seed=None), yet any run can be repeated with seed=pool.seed.
        self.seed: int = int(seed) if seed is not None else random.SystemRandom().getrandbits(63)
        self._dataset = dataset
        self._backend: _Backend
        if workers == 0:
            self._backend = _InCaller(self.seed)
        elif use_multiprocessing:
            self._backend = _ProcessWorkers(dataset, self.workers, self.max_queue_size, self.seed)
        else:
            self._backend = _ThreadWorkers(self.workers, self.max_queue_size, self.seed)
        self._stats = _EpochStats(epoch=-1, workers=self.workers)
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
        their own copy, so the new state is pickled now and sent to them (only
        when its bytes changed) before the next epoch's first task.

        Raises:
            TypeError: ``dataset`` cannot be indexed, or pickled for processes.
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
        consumer was blocked waiting for a batch).
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
        self._stats = stats = _EpochStats(epoch=epoch, workers=self.workers)
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


# -- in the calling thread, and in threads -------------------------------------------


class _InCaller:
    """``workers=0``: every batch built in the calling thread, when asked for."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._job: tuple[Dataset, int, list[int], _EpochStats] | None = None

    def begin(self, dataset: Dataset, epoch: int, order: list[int], stats: _EpochStats) -> None:
        self._job = (dataset, epoch, order, stats)

    def next(self, position: int) -> Batch:
        assert self._job is not None
        dataset, epoch, order, stats = self._job
        stats.requests += 1
        started = time.perf_counter()
        try:
            batch = _fetch(dataset, self._seed, epoch, order[position], legacy=False)
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


_ThreadResult: TypeAlias = tuple[int, Batch, Exception | None]


class _ThreadWorkers:
    """A thread pool, ``max_queue_size`` batches ahead; threads know their worker number."""

    def __init__(self, workers: int, max_queue_size: int, seed: int) -> None:
        self._workers = workers
        self._max_queue_size = max_queue_size
        self._seed = seed
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: collections.deque[concurrent.futures.Future[_ThreadResult]] = (
            collections.deque()
        )
        self._job: tuple[Dataset, int, list[int], _EpochStats] | None = None

    def begin(self, dataset: Dataset, epoch: int, order: list[int], stats: _EpochStats) -> None:
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
        worker, batch, error = self._pending.popleft().result()
        stats.wait_s += time.perf_counter() - started
        if error is not None:
            raise_with_context(error, where(worker, order[position], epoch))
        stats.batches_per_worker[worker] += 1
        self._top_up(position + 1)  # keep max_queue_size building while the consumer works
        return batch

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


def _number_thread(numbers: Iterator[int]) -> None:
    _local.worker = next(numbers)


def _thread_task(dataset: Dataset, seed: int, epoch: int, index: int) -> _ThreadResult:
    worker: int = _local.worker
    try:
        return worker, _fetch(dataset, seed, epoch, index, legacy=False), None
    except Exception as err:
        return worker, None, err


# -- processes ----------------------------------------------------------------------

# NOTE [ start method ]
# Workers are started with "spawn": a fresh interpreter that inherits no threads
# and no locks. TensorFlow is usually imported in the parent, and forking a
# process with TF's thread pools can deadlock the child (a lock held by a thread
# that does not exist there). "forkserver" is not safer here: by default its
# server imports __main__ (the user's script, hence TF) and forks from that.
# Spawn costs a re-import per worker, paid once since workers live across
# epochs, and needs a picklable dataset and an `if __name__ == "__main__":`
# guard in scripts (the same rules as on macOS and Windows).
_CONTEXT = multiprocessing.get_context("spawn")

# NOTE [ one shared task pipe ]
# Every worker reads tasks from one pipe, so a free worker takes the next batch
# and one slow batch holds up no other (per-worker queues would stall the
# batches queued behind it). Tasks are fixed-size records written in one
# os.write (atomic below PIPE_BUF) and read whole by one reader each, so no lock
# (and no semaphore in /dev/shm) is needed. A worker announces each task it
# takes ("took"), which is how the parent names the batch a dead worker was on.
# Control messages (stop, new dataset, new slots) go to each worker's own pipe
# and are read before the next task. At most _MAX_QUEUED tasks wait in the
# pipe, far below its 64 KiB buffer, so the parent never blocks writing one.
_TASK = struct.Struct("<qqqq")  # epoch, position, index, slot (-1: send it pickled)
_MAX_QUEUED = 1024


class _ProcessWorkers:
    """Worker processes, their pipes and the slot pool; all owned and released here.

    Holds no reference to the :class:`WorkerPool`, so it can be its finalizer.
    """

    def __init__(self, dataset: Dataset, workers: int, max_queue_size: int, seed: int) -> None:
        self._workers = workers
        self._in_flight = min(max_queue_size, _MAX_QUEUED)
        self._seed = seed
        self._dataset = dataset
        self._payload: bytes | None = _pickle_dataset(dataset)  # kept until sent
        self._sent_digest: bytes | None = None
        self._procs: list[BaseProcess] = []
        self._control: list[Connection] = []  # parent -> one worker
        self._results: list[Connection] = []  # one worker -> parent
        self._tasks: Connection | None = None  # parent -> any worker; NOTE [ one shared task pipe ]
        self._started: list[bool] = []
        self._current: list[int | None] = []  # the position each worker took and still owes
        self._slot_bytes: int | None = None  # None until the first batch is seen
        self._slots: SlotPool | None = None
        self._warned_oversize = False
        self._job: tuple[int, list[int], _EpochStats] | None = None
        self._slot_of: dict[int, int | None] = {}  # position -> slot, for batches in flight
        self._ready: dict[int, Batch] = {}
        self._dispatched = 0

    # -- the backend protocol ---------------------------------------------------------

    def update(self, dataset: Dataset) -> None:
        self._payload = _pickle_dataset(dataset)
        self._dataset = dataset

    def begin(self, dataset: Dataset, epoch: int, order: list[int], stats: _EpochStats) -> None:
        payload = self._payload if self._payload is not None else _pickle_dataset(self._dataset)
        self._payload = None
        digest = hashlib.blake2b(payload, digest_size=16).digest()
        self._job = (epoch, order, stats)
        self._ready, self._slot_of, self._dispatched = {}, {}, 0
        if not self._procs:
            self._launch(payload)
        elif digest != self._sent_digest:
            self._tell_all(("dataset", payload))
        self._sent_digest = digest

    def next(self, position: int) -> Batch:
        assert self._job is not None
        stats = self._job[2]
        self._dispatch(position)
        self._receive(block=False)
        stats.requests += 1
        stats.occupancy_sum += len(self._ready)
        while position not in self._ready:
            self._receive(block=True)
            self._dispatch(position)
        batch = self._ready.pop(position)
        self._dispatch(position + 1)
        return batch

    def abort(self) -> None:
        self.shutdown()  # workers may be mid-batch: restarting is simpler than draining

    def shutdown(self) -> None:
        """Stop every worker (politely, then SIGTERM, then SIGKILL) and unlink the segment."""
        procs, self._procs = self._procs, []
        for control in self._control:
            with contextlib.suppress(OSError):  # that worker is gone already
                control.send(None)
        deadline = time.monotonic() + _JOIN_S
        for process in procs:
            process.join(max(deadline - time.monotonic(), 0))
        for process in procs:
            if process.is_alive():
                process.terminate()
        for process in procs:
            process.join(5.0)
            if process.is_alive():
                process.kill()
                process.join()
        for conn in [*self._control, *self._results, *([self._tasks] if self._tasks else [])]:
            conn.close()
        self._control, self._results, self._tasks = [], [], None
        self._started, self._current = [], []
        self._sent_digest, self._job, self._ready, self._slot_of = None, None, {}, {}
        if self._slots is not None:
            self._slots.close()  # after the workers are gone, so none can attach any more
            self._slots = None

    # -- internals --------------------------------------------------------------------

    def _launch(self, payload: bytes) -> None:
        task_reader, self._tasks = _CONTEXT.Pipe(duplex=False)
        for worker in range(self._workers):
            control_reader, control = _CONTEXT.Pipe(duplex=False)
            results, results_writer = _CONTEXT.Pipe(duplex=False)
            process = _CONTEXT.Process(
                target=_worker_main,
                args=(worker, self._seed, payload, control_reader, task_reader, results_writer),
                name=f"feeders-worker-{worker}",
                daemon=True,
            )
            self._procs.append(process)
            self._control.append(control)
            self._results.append(results)
            self._started.append(False)
            self._current.append(None)
            process.start()
            # only the worker's copies remain open, so its exit makes reads see EOF
            control_reader.close()
            results_writer.close()
        task_reader.close()
        if self._slot_bytes:
            self._allocate_slots()

    def _allocate_slots(self) -> None:
        assert self._slot_bytes and self._job is not None
        self._slots = SlotPool(self._in_flight, self._slot_bytes)
        self._tell_all(("slots", (self._slots.name, self._slot_bytes)))

    def _tell_all(self, message: tuple[str, Any]) -> None:
        for worker, control in enumerate(self._control):
            try:
                control.send(message)
            except OSError:
                self._died(worker)  # EPIPE: it is dead; say how it died

    def _dispatch(self, yielded: int) -> None:
        """Queue tasks until ``max_queue_size`` batches are in flight or ready."""
        assert self._job is not None and self._tasks is not None
        epoch, order, _ = self._job
        limit = min(len(order), yielded + self._in_flight)
        if self._slot_bytes is None:
            # NOTE [ the first batch sizes the slots ]: it travels pickled, alone;
            # the slots are allocated from its arrays when it arrives.
            limit = min(limit, 1)
        while self._dispatched < limit:
            position = self._dispatched
            slot = self._slots.acquire() if self._slots is not None else None
            self._slot_of[position] = slot
            self._dispatched += 1
            record = _TASK.pack(epoch, position, order[position], -1 if slot is None else slot)
            try:
                os.write(self._tasks.fileno(), record)
            except OSError:
                self._find_dead()
                raise

    def _receive(self, *, block: bool) -> None:
        """Move finished batches into ``_ready``; raise if a worker failed or died."""
        assert self._job is not None
        stats = self._job[2]
        sentinels = {process.sentinel: w for w, process in enumerate(self._procs)}
        started = time.perf_counter()
        signalled = wait([*self._results, *sentinels], _POLL_S if block else 0)
        if block:
            stats.wait_s += time.perf_counter() - started
        for worker, conn in enumerate(self._results):
            if conn in signalled:
                self._drain(worker)
        for sentinel in signalled:
            if isinstance(sentinel, int):
                self._drain(sentinels[sentinel])  # what it sent before dying comes first
                self._died(sentinels[sentinel])
        if block and not signalled:
            self._find_dead()

    def _find_dead(self) -> None:
        for worker, process in enumerate(self._procs):
            if not process.is_alive():
                self._died(worker)

    def _drain(self, worker: int) -> None:
        conn = self._results[worker]
        while True:
            try:
                if not conn.poll():
                    return
                message = conn.recv()
            except (EOFError, OSError):  # only the pipe's errors: _handle re-raises user ones
                self._died(worker)
            self._handle(worker, message)

    def _handle(self, worker: int, message: tuple[Any, ...]) -> None:
        assert self._job is not None
        epoch, order, stats = self._job
        kind, position, payload = message
        pid = self._procs[worker].pid
        if kind == "took":
            self._current[worker] = position
            return
        if kind == "started":
            self._started[worker] = True
            return
        if kind == "fatal":
            failure, doing = payload
            failure.reraise(f"{where(worker)} (pid {pid}), {doing}")
        if kind == "error":
            payload.reraise(f"{where(worker, order[position], epoch)} (pid {pid})")
        self._current[worker] = None
        slot = self._slot_of.pop(position)
        if kind == "shm":
            assert self._slots is not None and slot is not None
            self._ready[position] = self._slots.read(slot, payload)
        else:
            self._ready[position] = payload
            self._pickled(position)
        if slot is not None and self._slots is not None:
            self._slots.release(slot)
        stats.batches_per_worker[worker] += 1

    def _pickled(self, position: int) -> None:
        """A batch came pickled: the first one (which sizes the slots) or one too big."""
        assert self._job is not None
        if self._slot_bytes is None:
            self._slot_bytes = slot_bytes_for(self._ready[position])
            if self._slot_bytes:
                self._allocate_slots()
            return
        if self._slots is not None and not self._warned_oversize:
            # NOTE [ one-time notice via logging ]: a warnings.warn would fail
            # test suites that run with -W error over a mere slowdown.
            self._warned_oversize = True
            logger.warning(
                "Batch %d does not fit the shared-memory slots (%d bytes each, sized from the "
                "first batch), so it and any other oversized batch travel pickled, which is "
                "slower. Make the first batch the largest to avoid this. (Logged once.)",
                self._job[1][position],
                self._slots.slot_bytes,
            )

    def _died(self, worker: int) -> None:
        assert self._job is not None
        epoch, order, _ = self._job
        process = self._procs[worker]
        process.join(_POLL_S)
        position = self._current[worker]
        raise WorkerError.died(
            worker=worker,
            pid=process.pid,
            exitcode=process.exitcode,
            epoch=epoch,
            batch=order[position] if position is not None else None,
            started=self._started[worker],
        )


def _pickle_dataset(dataset: Dataset) -> bytes:
    """The dataset as sent to worker processes, or a TypeError that says how to fix it."""
    cls = type(dataset)
    name = f"{cls.__module__}.{cls.__qualname__}"
    main = sys.modules.get("__main__")
    if cls.__module__ == "__main__" and not getattr(main, "__file__", None):
        reason = "its class lives in an interactive session, which worker processes cannot import"
    else:
        try:
            return pickle.dumps(dataset, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as err:
            reason = f"pickling it failed: {err}"
    raise TypeError(
        f"`dataset` must be picklable to run in worker processes (use_multiprocessing=True), "
        f"but got dataset of type {name}: {reason}. Define the class at module level in an "
        "importable file (not inside a function or a notebook) and keep open files, locks and "
        "generators out of its attributes, or pass use_multiprocessing=False to use threads."
    )


def _worker_main(
    worker: int,
    seed: int,
    payload: bytes,
    control: Connection,
    tasks: Connection,
    results: Connection,
) -> None:
    """A worker process: fetch batches for the parent until told to stop or orphaned."""
    # NOTE [ workers ignore SIGINT ]: Ctrl-C reaches the whole process group; the
    # parent decides what happens, instead of every worker printing a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    writer = SlotWriter()
    try:
        try:
            dataset = pickle.loads(payload)
        except Exception as err:
            failure = RemoteFailure.capture(err)
            results.send(("fatal", None, (failure, "while unpickling the dataset")))
            return
        del payload
        results.send(("started", None, None))
        _serve(dataset, seed, control, tasks, results, writer)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the parent is gone (killed, or it closed our pipes): nobody to tell
    finally:
        writer.close()


def _serve(
    dataset: Dataset,
    seed: int,
    control: Connection,
    tasks: Connection,
    results: Connection,
    writer: SlotWriter,
) -> None:
    parent = multiprocessing.parent_process()
    os.set_blocking(tasks.fileno(), False)  # idle workers race for each task; losers go back
    slots: tuple[str, int] = ("", 0)
    while True:
        if not wait([control, tasks], _POLL_S):
            if parent is not None and not parent.is_alive():
                return  # orphaned: the parent was killed without shutting us down
            continue
        if control.poll():  # NOTE [ one shared task pipe ]: control first
            message = control.recv()
            if message is None:
                return
            if message[0] == "slots":
                slots = message[1]
                continue
            try:
                dataset = pickle.loads(message[1])
            except Exception as err:
                results.send(("fatal", None, (RemoteFailure.capture(err), "in update()")))
                return
            continue
        try:
            record = os.read(tasks.fileno(), _TASK.size)
        except BlockingIOError:
            continue  # another worker took it
        if not record:
            return  # the parent closed the task pipe
        epoch, position, index, slot = _TASK.unpack(record)
        results.send(("took", position, None))
        try:
            batch = _fetch(dataset, seed, epoch, index, legacy=True)
            layout = writer.write(slots[0], slot, slots[1], batch) if slot >= 0 else None
            reply = ("pickled", position, batch) if layout is None else ("shm", position, layout)
            message_bytes = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as err:
            message_bytes = pickle.dumps(("error", position, RemoteFailure.capture(err)))
        results.send_bytes(message_bytes)
