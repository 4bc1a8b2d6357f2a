"""The parent's side of the worker processes: start, feed, collect, and always stop them.

Why one owner: the processes, their pipes and the shared-memory slots are
created and released here only, so shutdown (``close()``, garbage collection,
an error, Ctrl-C) has one place to get right. The worker's side is
:mod:`feeders.workers._worker`; the slots are :mod:`feeders.workers.shm`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, NoReturn

from feeders.errors import RemoteFailure, WorkerError, where
from feeders.workers._base import JOIN_S, POLL_S, Batch, Dataset, EpochStats
from feeders.workers._interrupt import Bell, raise_if_interrupted, watch_sigint
from feeders.workers._launch import Lifeline, WorkerProcess
from feeders.workers._serialize import Shipment
from feeders.workers._worker import MAX_QUEUED, TASK
from feeders.workers.shm import SlotPool, slot_bytes_for

__all__ = ["ProcessWorkers"]

# The pool's logger, whichever of its modules logs: users configure "feeders.workers.pool".
logger = logging.getLogger("feeders.workers.pool")

# NOTE [ start method ]
# Workers are fresh interpreters (feeders.workers._launch), never forks: TensorFlow
# is usually imported in the parent, and forking a process with TF's thread pools
# can deadlock the child (a lock held by a thread that does not exist there).
# Unlike multiprocessing's "spawn", they do not re-run the user's main module, so
# scripts need no `if __name__ == "__main__":` guard and notebooks work; the
# dataset travels by value where needed (feeders.workers._serialize). Workers
# live across epochs, so the start-up is paid once.


class ProcessWorkers:
    """Worker processes, their pipes and the slot pool; all owned and released here.

    Holds no reference to the :class:`WorkerPool`, so it can be its finalizer.
    """

    def __init__(self, dataset: Dataset, workers: int, max_queue_size: int, seed: int) -> None:
        self._workers = workers
        self._in_flight = min(max_queue_size, MAX_QUEUED)
        self._seed = seed
        self._dataset = dataset
        self._shipment = Shipment()
        self._shipment.prepare(dataset)  # a TypeError now, not in the first epoch
        self._fresh = True  # the shipment is up to date with self._dataset
        self._unsent = True  # ... and holds something the running workers have not loaded
        self._lifeline: Lifeline | None = None
        self._bell = Bell()  # NOTE [ Ctrl-C in a pool thread ]
        watch_sigint()
        self._procs: list[WorkerProcess] = []
        self._control: list[Connection] = []  # parent -> one worker
        self._results: list[Connection] = []  # one worker -> parent
        self._tasks: Connection | None = None  # parent -> any worker; NOTE [ one shared task pipe ]
        self._started: list[bool] = []
        self._current: list[int | None] = []  # the position each worker took and still owes
        self._dead: set[int] = set()  # workers lost while others still build earlier batches
        self._slot_bytes: int | None = None  # None until the first batch is seen
        self._slots: SlotPool | None = None
        self._warned_oversize = False
        self._job: tuple[int, list[int], EpochStats] | None = None
        self._slot_of: dict[int, int | None] = {}  # position -> slot, for batches in flight
        self._ready: dict[int, Batch] = {}
        self._dispatched = 0

    # -- the backend protocol ---------------------------------------------------------

    def update(self, dataset: Dataset) -> None:
        self._dataset = dataset
        self._fresh = False  # prepared by the next begin(), when no batch is being built

    def begin(self, dataset: Dataset, epoch: int, order: list[int], stats: EpochStats) -> None:
        # NOTE [ ship what changed ]: the state is pickled again (cheap: large arrays
        # are out of band) and each large array compared with its segment; workers
        # are told only when something changed (feeders.workers._serialize).
        if not self._fresh:
            self._unsent = self._shipment.prepare(self._dataset) or self._unsent
            self._fresh = True
        self._job = (epoch, order, stats)
        self._ready, self._slot_of, self._dispatched = {}, {}, 0
        if not self._procs:
            self._launch()
        elif self._unsent:
            self._tell_all(self._shipment.message())
        self._unsent = False

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
        if isinstance(batch, _Failed):
            # NOTE [ errors in order ]: raised when its turn comes, after every batch before it
            batch.raise_()
        self._dispatch(position + 1)
        return batch

    def abort(self) -> None:
        self._stop()  # workers may be mid-batch: restarting is simpler than draining

    def shutdown(self) -> None:
        """Stop the workers and unlink every segment (slots and the dataset's arrays)."""
        self._stop()
        self._shipment.close()
        self._bell.close()

    def _stop(self) -> None:
        """Stop every worker (politely, then SIGTERM, then SIGKILL) and unlink the slots."""
        procs, self._procs = self._procs, []
        for control in self._control:
            with contextlib.suppress(OSError):  # that worker is gone already
                control.send(None)
        deadline = time.monotonic() + JOIN_S
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
        for process in procs:
            process.close()
        if self._lifeline is not None:
            self._lifeline.close()
            self._lifeline = None
        for conn in [*self._control, *self._results, *([self._tasks] if self._tasks else [])]:
            conn.close()
        self._control, self._results, self._tasks = [], [], None
        self._started, self._current, self._dead = [], [], set()
        self._job, self._ready, self._slot_of = None, {}, {}
        if self._slots is not None:
            self._slots.close()  # after the workers are gone, so none can attach any more
            self._slots = None

    # -- internals --------------------------------------------------------------------

    def _launch(self) -> None:
        # NOTE [ the dataset travels on the control pipe ]
        # Not on the command line: sent after every start, a child that died is an
        # EPIPE here, hence a WorkerError; its large arrays are in shared memory.
        self._lifeline = Lifeline()
        task_reader, self._tasks = _pipe()
        try:
            for worker in range(self._workers):
                self._start(worker, self._lifeline, task_reader)
        finally:
            task_reader.close()
            self._lifeline.started()
        self._tell_all(self._shipment.message())
        if self._slot_bytes:
            self._allocate_slots()

    def _start(self, worker: int, lifeline: Lifeline, task_reader: Connection) -> None:
        control_reader, control = _pipe()
        results, results_writer = _pipe()
        try:
            process = WorkerProcess(
                f"feeders-worker-{worker}",
                lifeline,
                (control_reader.fileno(), task_reader.fileno(), results_writer.fileno()),
                (worker, self._seed),
            )
        except BaseException:
            control.close()
            results.close()
            raise
        finally:
            # only the worker's copies remain open, so its exit makes reads see EOF
            control_reader.close()
            results_writer.close()
        # recorded only once started: shutdown() joins every process it finds here
        self._procs.append(process)
        self._control.append(control)
        self._results.append(results)
        self._started.append(False)
        self._current.append(None)

    def _allocate_slots(self) -> None:
        assert self._slot_bytes and self._job is not None
        self._slots = SlotPool(self._in_flight, self._slot_bytes)
        self._tell_all(("slots", (self._slots.name, self._slot_bytes)))

    def _tell_all(self, message: tuple[Any, ...]) -> None:
        for worker, control in enumerate(self._control):
            if worker in self._dead:
                continue
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
            record = TASK.pack(epoch, position, order[position], -1 if slot is None else slot)
            try:
                os.write(self._tasks.fileno(), record)
            except OSError:
                self._find_dead()
                raise

    def _receive(self, *, block: bool) -> None:
        """Move finished batches into ``_ready``; raise if a worker failed or died."""
        assert self._job is not None
        stats = self._job[2]
        live = [w for w in range(len(self._procs)) if w not in self._dead]
        sentinels = {self._procs[w].sentinel: w for w in live}
        results = [self._results[w] for w in live]
        started = time.perf_counter()
        bell = self._bell.fileno()
        signalled = wait([*results, *sentinels, bell], POLL_S if block else 0)
        if block:
            stats.wait_s += time.perf_counter() - started
        if bell in signalled:
            raise_if_interrupted(self._bell)
        for worker in live:
            if self._results[worker] in signalled and worker not in self._dead:
                self._drain(worker)
        for sentinel in signalled:
            gone = sentinels.get(sentinel) if isinstance(sentinel, int) else None
            if gone is not None and gone not in self._dead:
                self._drain(gone)  # what it sent before dying comes first
                if gone not in self._dead:
                    self._lost(gone)
        if block and not signalled:
            self._find_dead()

    def _find_dead(self) -> None:
        for worker, process in enumerate(self._procs):
            if worker not in self._dead and not process.is_alive():
                self._lost(worker)

    def _drain(self, worker: int) -> None:
        conn = self._results[worker]
        while True:
            try:
                if not conn.poll():
                    return
                message = conn.recv()
            except (EOFError, OSError):  # only the pipe's errors: _handle re-raises user ones
                self._lost(worker)
                return
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
        self._current[worker] = None
        slot = self._slot_of.pop(position)
        if kind == "error":
            context = f"{where(worker, order[position], epoch)} (pid {pid})"
            self._ready[position] = _Failed(payload, context)  # NOTE [ errors in order ]
        elif kind == "shm":
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

    def _lost(self, worker: int) -> None:
        """A worker is gone: its batch fails in its turn while others build the ones before.

        NOTE [ errors in order ]: a worker that dies on batch k is reported when the
        consumer reaches k, after every earlier batch, as long as another worker is
        alive to build them; a worker that died idle, or the last one, raises now.
        """
        position = self._current[worker]
        alive = len(self._procs) - len(self._dead) - 1
        if position is None or alive == 0:
            self._died(worker)
        error = self._death(worker)
        self._dead.add(worker)
        self._current[worker] = None
        slot = self._slot_of.pop(position, None)
        if slot is not None and self._slots is not None:
            self._slots.release(slot)
        self._ready[position] = _Failed(error)

    def _died(self, worker: int) -> NoReturn:
        raise self._death(worker)

    def _death(self, worker: int) -> WorkerError:
        assert self._job is not None
        epoch, order, _ = self._job
        process = self._procs[worker]
        process.join(POLL_S)
        position = self._current[worker]
        return WorkerError.died(
            worker=worker,
            pid=process.pid,
            exitcode=process.exitcode,
            epoch=epoch,
            batch=order[position] if position is not None else None,
            started=self._started[worker],
        )


@dataclass(frozen=True)
class _Failed:
    """A batch that failed (raised, or its worker died), kept in place until its turn."""

    failure: RemoteFailure | WorkerError
    context: str = ""

    def raise_(self) -> NoReturn:
        if isinstance(self.failure, WorkerError):
            raise self.failure
        self.failure.reraise(self.context)


def _pipe() -> tuple[Connection, Connection]:
    """A one-way pipe (reader, writer) whose ends a worker can be passed by number."""
    reader, writer = os.pipe()
    return Connection(reader, writable=False), Connection(writer, readable=False)
