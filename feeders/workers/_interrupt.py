"""Ctrl-C reaches a pool that waits for a batch outside the main thread.

Why: Keras on TensorFlow pulls batches through ``tf.data``'s ``from_generator``,
so the pool waits in one of TensorFlow's threads while the main thread sits in
TensorFlow's C++ code. Python runs signal handlers only in the main thread, and
only between bytecodes, so Ctrl-C during a slow batch was noticed when the
batch arrived (30 s later), and TensorFlow's teardown then waited on the
generator at exit.

NOTE [ Ctrl-C in a pool thread ]
Python's C-level signal handler writes each signal's number to the *wakeup fd*
(:func:`signal.set_wakeup_fd`) at once, whatever the main thread is doing. When
no one else uses that fd, the first pool created in the main thread installs
one, and a daemon thread forwards each SIGINT to every pool's :class:`Bell`,
which a waiting pool includes in its ``wait()``. A pool woken so outside the
main thread, while SIGINT still has Python's default handler, raises
``KeyboardInterrupt`` there, which stops its workers and fails TensorFlow's
call at once. In the main thread the bell is only drained: Python's handler
already raises.

Known limit: through TensorFlow, the main thread's pending ``KeyboardInterrupt``
collides with TensorFlow's error while pybind11 converts it, and reaches the
user as ``RuntimeError: pybind11::error_already_set: MISMATCH ... REPLACED BY
KeyboardInterrupt`` (ending the generator quietly instead gives the same with
``OutOfRangeError``). Restoring the type is the Keras hand-off's business.
Where the wakeup fd is taken (an asyncio loop's signal handling), pools go
without, as before.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import weakref

__all__ = ["Bell", "raise_if_interrupted", "watch_sigint"]

_bells: weakref.WeakSet[Bell] = weakref.WeakSet()
_lock = threading.Lock()
_installed = False


class Bell:
    """A pipe rung on SIGINT; ``fileno()`` makes it waitable with the pool's pipes."""

    def __init__(self) -> None:
        self._reader, self._writer = os.pipe()
        os.set_blocking(self._reader, False)
        os.set_blocking(self._writer, False)
        with _lock:
            _bells.add(self)

    def fileno(self) -> int:
        return self._reader

    def ring(self) -> None:
        with contextlib.suppress(OSError):  # full (already rung) or closed
            os.write(self._writer, b"!")

    def clear(self) -> bool:
        """Drain it; ``True`` when it had been rung."""
        try:
            return bool(os.read(self._reader, 512))
        except (BlockingIOError, OSError):
            return False

    def close(self) -> None:
        with _lock:
            _bells.discard(self)
        for fd in (self._reader, self._writer):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._reader = self._writer = -1


def raise_if_interrupted(bell: Bell) -> None:
    """After ``bell`` woke a wait: ``KeyboardInterrupt`` in a pool thread, nothing in main."""
    if not bell.clear() or threading.current_thread() is threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        raise KeyboardInterrupt("Ctrl-C while the worker pool waited for a batch")


def watch_sigint() -> None:
    """Install the wakeup fd once, from the main thread, when no one else uses it."""
    global _installed
    with _lock:
        if _installed or threading.current_thread() is not threading.main_thread():
            return
        reader, writer = os.pipe()
        os.set_blocking(writer, False)
        previous = signal.set_wakeup_fd(writer, warn_on_full_buffer=False)
        if previous != -1:  # someone else's: give it back
            signal.set_wakeup_fd(previous)
            os.close(reader)
            os.close(writer)
            return
        _installed = True
    threading.Thread(target=_forward, args=(reader,), name="feeders-sigint", daemon=True).start()


def _forward(reader: int) -> None:
    while signals := os.read(reader, 512):
        if signal.SIGINT in signals:
            with _lock:
                bells = list(_bells)
            for bell in bells:
                bell.ring()
