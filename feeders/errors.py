"""Errors raised by feeders, and the one place that formats where a failure happened.

Why one module: a failure inside a worker is reported by the pool, the sources
and the Keras glue alike; they all say ``worker 1, batch 17, epoch 0`` the same
way and keep the user's exception type, so ``except ValueError`` still works
around ``model.fit``.
"""

from __future__ import annotations

import pickle
import signal
import textwrap
import traceback
from dataclasses import dataclass
from typing import NoReturn

__all__ = [
    "TF_ASSERT_TAG",
    "RemoteFailure",
    "SharedMemoryError",
    "WorkerError",
    "WorkerTraceback",
    "from_tf_error",
    "raise_with_context",
    "where",
]

TF_ASSERT_TAG = "[feeders ValueError] "
"""Starts the message of every assertion feeders builds into a TF pipeline (see :func:`from_tf_error`)."""


def where(worker: int | None, batch: int | None = None, epoch: int | None = None) -> str:
    """``worker 1, batch 17, epoch 0``: the context every worker failure carries.

    ``worker=None`` means the calling thread (``workers=0``); ``batch`` is the
    dataset index, so ``dataset[batch]`` reproduces the failure.
    """
    parts = ["calling thread" if worker is None else f"worker {worker}"]
    if batch is not None:
        parts.append(f"batch {batch}")
    if epoch is not None:
        parts.append(f"epoch {epoch}")
    return ", ".join(parts)


class WorkerError(RuntimeError):
    """A worker process died without raising a Python exception (a signal, ``os._exit``).

    Attributes:
        worker: the worker's number in the pool.
        pid: its process id.
        exitcode: the process exit code; negative when a signal ended it.
        signal: the signal's name (``"SIGKILL"``), or ``None`` for a plain exit.
        epoch: the epoch under way.
        batch: the dataset index it was fetching, or ``None`` when it died between batches.
    """

    def __init__(
        self,
        message: str,
        *,
        worker: int,
        pid: int | None,
        exitcode: int | None,
        epoch: int | None,
        batch: int | None,
    ) -> None:
        super().__init__(message)
        self.worker = worker
        self.pid = pid
        self.exitcode = exitcode
        self.signal = _signal_name(exitcode)
        self.epoch = epoch
        self.batch = batch

    @classmethod
    def died(
        cls,
        *,
        worker: int,
        pid: int | None,
        exitcode: int | None,
        epoch: int | None,
        batch: int | None,
        started: bool = True,
    ) -> WorkerError:
        """The error for a worker found dead, with the likely cause and the fix."""
        name = _signal_name(exitcode)
        how = f"was killed by signal {name}" if name else f"exited with code {exitcode}"
        state = "" if batch is not None else ", idle"
        if not started and name is None:
            state = ", while starting"
        hint = _hint(name, started)
        message = (
            f"A worker process {how} ({where(worker, batch, epoch)}{state}; pid {pid}). {hint}"
        )
        return cls(message, worker=worker, pid=pid, exitcode=exitcode, epoch=epoch, batch=batch)

    def __reduce__(self) -> tuple[object, ...]:
        # keyword-only __init__: the default reduce (cls(*args)) could not rebuild it
        return _rebuild_worker_error, (
            str(self),
            self.worker,
            self.pid,
            self.exitcode,
            self.epoch,
            self.batch,
        )


def _rebuild_worker_error(
    message: str,
    worker: int,
    pid: int | None,
    exitcode: int | None,
    epoch: int | None,
    batch: int | None,
) -> WorkerError:
    return WorkerError(message, worker=worker, pid=pid, exitcode=exitcode, epoch=epoch, batch=batch)


def _signal_name(exitcode: int | None) -> str | None:
    if exitcode is None or exitcode >= 0:
        return None
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"signal {-exitcode}"


def _hint(signal_name: str | None, started: bool) -> str:
    if not started and signal_name is None:
        return (
            "It ended before it could run a batch, while starting or loading the dataset "
            '(workers do not re-run your main module, so an `if __name__ == "__main__":` '
            "guard is not the cause): see the worker's own output above, e.g. an import that "
            "fails or crashes in a fresh interpreter, or pass use_multiprocessing=False."
        )
    if signal_name == "SIGKILL":
        return (
            "SIGKILL usually comes from the out-of-memory killer: lower max_queue_size, the "
            "batch size or the number of workers."
        )
    if signal_name == "SIGBUS":
        return "SIGBUS usually means /dev/shm ran full: free it or pass use_multiprocessing=False."
    return "Check the worker's output above for the cause; the pool has been shut down."


class SharedMemoryError(OSError):
    """``/dev/shm`` has too little free space for the pool's shared-memory slots."""


class WorkerTraceback(Exception):
    """The ``__cause__`` of an exception re-raised from a worker process.

    Why: the original exception object cannot carry its traceback across the
    process boundary. This carrier holds the worker's traceback text, and
    ``original``, the worker's exception itself when it could be unpickled.
    """

    def __init__(self, summary: str, traceback_text: str, original: BaseException | None) -> None:
        super().__init__(summary)
        self.traceback_text = traceback_text
        self.original = original


class _KeyErrorMessage(str):
    """KeyError shows ``repr()`` of its argument; this keeps a message readable."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def _same_type(exc_type: type[BaseException], message: str) -> BaseException:
    """``exc_type(message)``, or a RuntimeError naming the type when that is impossible."""
    argument = _KeyErrorMessage(message) if issubclass(exc_type, KeyError) else message
    try:
        rebuilt = exc_type(argument)
    except Exception:
        rebuilt = None
    # NOTE [ keeping the exception type ]
    # A type whose __init__ needs other arguments, or whose __str__ hides the
    # message, cannot carry the context; a RuntimeError that names it can.
    if rebuilt is None or message not in str(rebuilt):
        return RuntimeError(f"{exc_type.__qualname__}: {message}")
    return rebuilt


def raise_with_context(err: Exception, context: str) -> NoReturn:
    """Re-raise ``err`` (from a thread or the calling thread) with its type and ``context``."""
    raise _same_type(type(err), f"{err}\n  [raised by dataset.__getitem__ in {context}]") from err


@dataclass(frozen=True)
class RemoteFailure:
    """An exception caught in a worker process, in a form that always crosses the pipe.

    The type and the exception are pickled separately, so a type the parent
    cannot import, or an exception that will not pickle, still leaves the
    name, message and traceback text.
    """

    type_name: str
    message: str
    traceback_text: str
    pickled_type: bytes | None
    pickled_exception: bytes | None

    @classmethod
    def capture(cls, err: BaseException) -> RemoteFailure:
        """Record ``err`` inside the worker, where its traceback still exists."""
        return cls(
            type_name=type(err).__qualname__,
            message=str(err),
            traceback_text="".join(traceback.format_exception(err)),
            pickled_type=_dumps_or_none(type(err)),
            pickled_exception=_dumps_or_none(err),
        )

    def reraise(self, context: str) -> NoReturn:
        """Raise in the parent: the worker's type, ``context`` and its traceback text.

        Raises:
            The worker's exception type (or RuntimeError when it cannot be
            rebuilt), ``from`` a :class:`WorkerTraceback` carrier.
        """
        exc_type = _loads_or_none(self.pickled_type)
        if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
            exc_type = None
        original = _loads_or_none(self.pickled_exception)
        tb = textwrap.indent(self.traceback_text.rstrip(), "    ")
        message = f"{self.message}\n  [raised in {context}; the worker's traceback:]\n{tb}"
        rebuilt = (
            _same_type(exc_type, message)
            if exc_type
            else RuntimeError(f"{self.type_name}: {message}")
        )
        carrier = WorkerTraceback(
            f"{self.type_name}: {self.message} (in {context})",
            self.traceback_text,
            original if isinstance(original, BaseException) else None,
        )
        raise rebuilt from carrier


def _dumps_or_none(obj: object) -> bytes | None:
    try:
        return pickle.dumps(obj)
    except Exception:
        return None


def _loads_or_none(data: bytes | None) -> object:
    if data is None:
        return None
    try:
        return pickle.loads(data)
    except Exception:
        return None


def from_tf_error(err: BaseException) -> ValueError | None:
    """The ``ValueError`` a failed assertion of feeders' own TF ops stands for, else ``None``.

    Why: a check that runs inside a ``tf.data`` pipeline (a label that
    ``class_weight`` does not cover, say) can only fail the pipeline, which
    reaches ``fit`` as ``InvalidArgumentError`` with the message buried among
    graph node names. Its message starts with :data:`TF_ASSERT_TAG`, so the
    Keras glue can raise what it means.
    """
    message = getattr(err, "message", None)
    if not isinstance(message, str) or TF_ASSERT_TAG not in message:
        return None
    text = message.split(TF_ASSERT_TAG, 1)[1]
    for end in ("\n\t [[", " [[", "\n"):
        text = text.split(end, 1)[0]
    return ValueError(text.strip().rstrip("]").replace("] [", " "))
