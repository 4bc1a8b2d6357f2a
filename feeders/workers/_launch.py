"""How a worker process starts and how it ends when its parent does.

Why not ``multiprocessing``'s "spawn": its preparation data makes every child
re-run the user's main module (``init_main_from_path``), which is what breaks
scripts without an ``if __name__ == "__main__":`` guard and re-imports
TensorFlow in every worker, and its children inherit the resource tracker's
pipe, so a tracker outlives a killed parent as long as a worker does. Forking
is no way out: TensorFlow's threads make a forked child deadlock-prone.

So a worker is a fresh interpreter started here with ``subprocess``:

- it runs only ``feeders.workers._worker`` (the dataset arrives by value, see
  :mod:`feeders.workers._serialize`), with the parent's ``sys.path``, working
  directory and environment, and never imports ``__main__``;
- it is in a session of its own, so a terminal's Ctrl-C reaches the parent
  only (NOTE [ workers ignore SIGINT ]);
- it holds the read end of the parent's *lifeline* pipe on a watchdog thread:
  when the parent dies, however (SIGKILL included), the pipe reads EOF and the
  worker exits at once, even in the middle of a 30-second ``__getitem__``;
- it holds the write end of a *sentinel* pipe, which the parent waits on: it
  reads EOF the moment the worker is gone, like ``Process.sentinel``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import weakref

__all__ = ["Lifeline", "WorkerProcess", "watch_parent"]


class Lifeline:
    """A pipe whose write end only the parent holds; workers exit when it closes.

    Exec'd children never get it (``os.pipe`` is non-inheritable); a child
    *forked* from the parent (Keras' own pool forks) drops its copy at once,
    so it cannot keep the parent's workers alive after the parent died.
    """

    def __init__(self) -> None:
        self.reader, self._writer = os.pipe()
        _lifelines.add(self)

    def started(self) -> None:
        """Every worker has its copy of the read end: drop the parent's."""
        os.close(self.reader)
        self.reader = -1

    def close(self) -> None:
        for fd in (self.reader, self._writer):
            if fd >= 0:
                os.close(fd)
        self.reader = self._writer = -1


_lifelines: weakref.WeakSet[Lifeline] = weakref.WeakSet()


def _drop_lifelines_in_fork() -> None:
    for lifeline in list(_lifelines):
        lifeline.close()


os.register_at_fork(after_in_child=_drop_lifelines_in_fork)


class WorkerProcess:
    """One worker interpreter: the subset of ``multiprocessing.Process`` the pool uses."""

    def __init__(
        self, name: str, lifeline: Lifeline, fds: tuple[int, ...], numbers: tuple[int, ...]
    ) -> None:
        self.name = name
        self.sentinel, sentinel_writer = os.pipe()
        passed = (lifeline.reader, sentinel_writer, *fds)
        code = (
            f"import sys; sys.path[:] = {sys.path!r}; "
            "from feeders.workers._worker import boot; boot()"
        )
        try:
            self._popen = subprocess.Popen(
                [sys.executable, "-c", code] + [str(number) for number in (*passed, *numbers)],
                pass_fds=passed,
                start_new_session=True,
            )
        except BaseException:
            os.close(self.sentinel)
            raise
        finally:
            os.close(sentinel_writer)  # only the worker's copy remains: EOF when it is gone
        self.pid: int = self._popen.pid

    @property
    def exitcode(self) -> int | None:
        """``None`` while it runs; negative when a signal ended it (as ``multiprocessing``)."""
        return self._popen.poll()

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)

    def terminate(self) -> None:
        if self.is_alive():
            self._popen.terminate()

    def kill(self) -> None:
        if self.is_alive():
            self._popen.kill()

    def close(self) -> None:
        """Release the sentinel; call once it has been joined."""
        if self.sentinel >= 0:
            os.close(self.sentinel)
            self.sentinel = -1


def watch_parent(lifeline: int) -> None:
    """In a worker: exit as soon as the parent's lifeline closes (the parent is gone)."""

    def watch() -> None:
        while os.read(lifeline, 1):
            pass
        os._exit(0)

    threading.Thread(target=watch, name="feeders-lifeline", daemon=True).start()
