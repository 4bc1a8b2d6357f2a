"""Quiet start-up: TensorFlow's C++ log lines kept off the terminal of ``feeders`` commands.

Why a filter on file descriptor 2 rather than ``TF_CPP_MIN_LOG_LEVEL``:
TensorFlow 2.16+ logs through absl before ``absl::InitializeLog()`` is called,
and absl then writes every message to stderr whatever the level says (the
oneDNN, "Could not find cuda drivers", "failed call to cuInit" lines), and
it does so in each process that imports TensorFlow: worker processes and
benchmark suites too. :func:`silence` points fd 2 at a pipe read by a small
filter process that drops those lines (:func:`is_tf_log_line`) and passes
everything else through unchanged: Python tracebacks, warnings, FATAL lines.

Why a process, not a thread: it outlives a crash of ours (a fatal message is
still printed), cannot deadlock on the GIL, and keeps filtering while the
interpreter shuts down, when TensorFlow prints "Error occurred when
finalizing GeneratorDataset iterator" for iterators garbage-collected late.
Processes started afterwards (spawned workers, suites) inherit the filtered
fd 2, and :data:`ENV` tells them to quiet their Python loggers too
(:func:`silence_if_asked`, one call at a worker's start).

``feeders ... --verbose`` skips all of this.
"""

from __future__ import annotations

import logging
import os
import re
import sys

__all__ = ["ENV", "is_tf_log_line", "silence", "silence_if_asked"]

ENV = "FEEDERS_QUIET"
"""Set to ``"1"`` by :func:`silence`; processes started after it inherit it."""

_TF_LINE = re.compile(
    rb"^(?:"
    rb"[IWE]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] "  # absl: I0000 00:00:1796142925.55 123 port.cc:153]
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] tensorflow/"  # TensorFlow before 2.16
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|To enable the following instructions: .*rebuild TensorFlow"  # cpu_feature_guard's 2nd line
    rb")"
)
_FILTER = r"""
import os, re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
line = re.compile(sys.argv[1].encode("latin-1"))
pending = b""
while True:
    chunk = os.read(0, 65536)
    if not chunk:
        break
    *lines, pending = (pending + chunk).split(b"\n")
    out = b"".join(x + b"\n" for x in lines if not line.match(x))
    if pending and not line.match(pending):
        out, pending = out + pending, b""
    if out:
        os.write(1, out)
"""
_installed = False


def is_tf_log_line(line: str | bytes) -> bool:
    """Whether ``line`` is one of TensorFlow's C++ log lines (INFO, WARNING or ERROR; never FATAL)."""
    return bool(_TF_LINE.match(line.encode() if isinstance(line, str) else line))


def silence() -> None:
    """Keep TensorFlow's start-up lines off stderr for this process and those it starts.

    Idempotent. Call it before TensorFlow is imported: it also sets
    ``TF_CPP_MIN_LOG_LEVEL=3`` (unless set) and the ``tensorflow`` and ``absl``
    Python loggers to ERROR.
    """
    global _installed
    os.environ[ENV] = "1"
    _quiet_python_loggers()
    if _installed:
        return
    _installed = True
    sys.stderr.flush()
    read, write = os.pipe()
    real = os.dup(2)
    try:
        os.posix_spawn(
            sys.executable,
            [sys.executable, "-S", "-I", "-c", _FILTER, _TF_LINE.pattern.decode("latin-1")],
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, read, 0),
                (os.POSIX_SPAWN_DUP2, real, 1),
                (os.POSIX_SPAWN_CLOSE, write),
            ],
            setsid=True,  # Ctrl-C at the terminal reaches us, not the filter
        )
    except OSError:  # no filter possible here: stay loud rather than lose stderr
        os.close(read)
        os.close(write)
        os.close(real)
        return
    os.dup2(write, 2)
    for fd in (read, write, real):
        os.close(fd)


def silence_if_asked() -> None:
    """In a process started by a silenced one (``$FEEDERS_QUIET``): quiet its Python loggers.

    Its fd 2 is already the parent's filtered one; a worker calls this at start.
    """
    if os.environ.get(ENV) == "1":
        _quiet_python_loggers()


def _quiet_python_loggers() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("tensorflow", "absl", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
