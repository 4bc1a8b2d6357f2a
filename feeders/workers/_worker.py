"""Inside a worker process: take tasks from the shared pipe, fetch, reply through a slot.

Why apart from the parent's side (:mod:`feeders.workers._processes`): this is
the code a worker interpreter runs, with the task record both sides agree on;
it changes when the protocol does, not when the parent's bookkeeping does. It
imports neither TensorFlow nor Keras (NOTE [ the worker's keras ]).
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
from multiprocessing.connection import Connection, wait
from typing import Any

from feeders.errors import RemoteFailure
from feeders.workers._base import POLL_S
from feeders.workers._fetch import fetch
from feeders.workers._launch import watch_parent
from feeders.workers._serialize import load
from feeders.workers.shm import SlotWriter

__all__ = ["MAX_QUEUED", "TASK", "boot", "worker_main"]

# NOTE [ one shared task pipe ]
# Every worker reads tasks from one pipe, so a free worker takes the next batch
# and one slow batch holds up no other (per-worker queues would stall the
# batches queued behind it). Tasks are fixed-size records written in one
# os.write (atomic below PIPE_BUF) and read whole by one reader each, so no lock
# (and no semaphore in /dev/shm) is needed. A worker announces each task it
# takes ("took"), which is how the parent names the batch a dead worker was on.
# Control messages (stop, new dataset, new slots) go to each worker's own pipe
# and are read before the next task. At most MAX_QUEUED tasks wait in the
# pipe, far below its 64 KiB buffer, so the parent never blocks writing one.
TASK = struct.Struct("<qqqq")  # epoch, position, index, slot (-1: send it pickled)
MAX_QUEUED = 1024


def boot() -> None:
    """The worker interpreter's entry point (see :mod:`feeders.workers._launch`).

    ``argv``: the lifeline, the sentinel, the control, task and results pipes,
    then the worker's number and the pool's seed.
    """
    lifeline, _sentinel, control, tasks, results, worker, seed = map(int, sys.argv[1:8])
    watch_parent(lifeline)
    worker_main(
        worker,
        seed,
        Connection(control, writable=False),
        Connection(tasks, writable=False),
        Connection(results, readable=False),
    )


def worker_main(
    worker: int,
    seed: int,
    control: Connection,
    tasks: Connection,
    results: Connection,
) -> None:
    """A worker process: fetch batches for the parent until told to stop or orphaned.

    The first control message is the dataset (NOTE [ the dataset travels on the
    control pipe ], in :mod:`feeders.workers._processes`).
    """
    # NOTE [ workers ignore SIGINT ]: workers run in a session of their own, so a
    # terminal's Ctrl-C reaches the parent only, which decides what happens; a
    # SIGINT sent to a worker itself is ignored too, instead of a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    writer = SlotWriter()
    try:
        message = control.recv()
        if message is None:
            return  # shut down before it was sent anything
        try:
            dataset = load(message)
        except Exception as err:
            failure = RemoteFailure.capture(err)
            results.send(("fatal", None, (failure, "while unpickling the dataset")))
            return
        del message
        results.send(("started", None, None))
        _serve(dataset, seed, control, tasks, results, writer)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the parent is gone (killed, or it closed our pipes): nobody to tell
    finally:
        writer.close()


def _serve(
    dataset: Any,
    seed: int,
    control: Connection,
    tasks: Connection,
    results: Connection,
    writer: SlotWriter,
) -> None:
    os.set_blocking(tasks.fileno(), False)  # idle workers race for each task; losers go back
    slots: tuple[str, int] = ("", 0)
    while True:
        if not wait([control, tasks], POLL_S):
            continue  # an orphan exits through its lifeline (feeders.workers._launch)
        if control.poll():  # NOTE [ one shared task pipe ]: control first
            message = control.recv()
            if message is None:
                return
            if message[0] == "slots":
                slots = message[1]
                continue
            dataset = None  # drop the old mappings before the new ones are made
            try:
                dataset = load(message)
            except Exception as err:
                results.send(("fatal", None, (RemoteFailure.capture(err), "in update()")))
                return
            continue
        try:
            record = os.read(tasks.fileno(), TASK.size)
        except BlockingIOError:
            continue  # another worker took it
        if not record:
            return  # the parent closed the task pipe
        epoch, position, index, slot = TASK.unpack(record)
        results.send(("took", position, None))
        try:
            batch = fetch(dataset, seed, epoch, index, legacy=True)
            layout = writer.write(slots[0], slot, slots[1], batch) if slot >= 0 else None
            reply = ("pickled", position, batch) if layout is None else ("shm", position, layout)
            message_bytes = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as err:
            message_bytes = pickle.dumps(("error", position, RemoteFailure.capture(err)))
        results.send_bytes(message_bytes)
