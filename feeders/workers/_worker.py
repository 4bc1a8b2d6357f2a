"""Inside a worker process: take tasks from the shared pipe, fetch, reply through a slot.

Why apart from the parent's side (:mod:`feeders.workers._processes`): this is
the code a spawned interpreter runs, with the wire formats both sides agree on
(the task record, the pickled dataset); it changes when the protocol does, not
when the parent's bookkeeping does.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import struct
import sys
from multiprocessing.connection import Connection, wait

from feeders.errors import RemoteFailure
from feeders.workers._base import POLL_S, Dataset
from feeders.workers._fetch import fetch
from feeders.workers.shm import SlotWriter

__all__ = ["MAX_QUEUED", "TASK", "pickle_dataset", "worker_main"]

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


def pickle_dataset(dataset: Dataset) -> bytes:
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
    # NOTE [ workers ignore SIGINT ]: Ctrl-C reaches the whole process group; the
    # parent decides what happens, instead of every worker printing a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    writer = SlotWriter()
    try:
        message = control.recv()
        if message is None:
            return  # shut down before it was sent anything
        try:
            dataset = pickle.loads(message[1])
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
        if not wait([control, tasks], POLL_S):
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
