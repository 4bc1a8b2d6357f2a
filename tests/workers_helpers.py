"""Datasets for ``tests/test_workers.py``, at module level so worker processes can import them.

Every batch says where it came from: ``x`` of batch ``i`` is
``1000 * i + offset + arange``, so a wrong, repeated or stale batch shows.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import keras
import numpy as np

from feeders.workers import batch_rng

_PyDataset = keras.utils.PyDataset

KINDS = ("array", "tuple", "list", "dict")


def worker_pids(parent: int | None = None) -> set[int]:
    """Live worker processes (``feeders.workers._worker``) whose parent is ``parent``.

    Zombies count: a worker that was never waited for is a leak too.
    """
    parent = os.getpid() if parent is None else parent
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rpartition(")")[2].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == parent and b"feeders.workers._worker" in command:
            found.add(int(entry))
    return found


class AugmentError(Exception):
    """A user exception type the pool must keep."""


def expected(index: int, *, offset: int = 0, rows: int = 4, kind: str = "tuple") -> Any:
    """Batch ``index`` as :class:`Arrays` builds it, computed independently of any pool."""
    x = (np.arange(rows * 3, dtype=np.float32).reshape(rows, 3) + 1000 * index + offset).astype(
        np.float32
    )
    y = np.full(rows, index, dtype=np.int64)
    return {
        "array": x,
        "tuple": (x, y),
        "list": [x, y],
        "dict": ({"a": x, "b": (x[:, :2] % 251).astype(np.uint8)}, y, np.ones(rows, np.float64)),
    }[kind]


class Arrays:
    """Batch ``i`` is :func:`expected`; ``rows_at`` gives some batches other sizes."""

    def __init__(
        self,
        *,
        offset: int = 0,
        rows: int = 4,
        kind: str = "tuple",
        rows_at: dict[int, int] | None = None,
    ) -> None:
        self.offset, self.rows, self.kind = offset, rows, kind
        self.rows_at = rows_at or {}

    def __len__(self) -> int:
        return 10

    def __getitem__(self, index: int) -> Any:
        rows = self.rows_at.get(index, self.rows)
        return expected(index, offset=self.offset, rows=rows, kind=self.kind)


class Slow:
    """Sleeps ``seconds`` in batch ``at``; each batch records when it was finished."""

    def __init__(self, at: int, seconds: float) -> None:
        self.at, self.seconds = at, seconds

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index == self.at:
            time.sleep(self.seconds)
        return np.array([index]), np.array([time.monotonic()])


class Draws:
    """Random numbers from ``batch_rng()`` and from the legacy global generators."""

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {
            "batch_rng": batch_rng().random(4),
            "np_random": np.random.random(2),
            "random": np.array([random.random(), random.random()]),
        }


class Failing:
    """Raises ``error`` (an :class:`AugmentError` by default) in batch ``at``."""

    def __init__(self, at: int, error: Exception | None = None) -> None:
        self.at = at
        self.error = error if error is not None else AugmentError("bad sample")

    def __getitem__(self, index: int) -> np.ndarray:
        if index == self.at:
            raise self.error
        return np.array([index])


class Exits:
    """Ends its process with ``os._exit(code)`` in batch ``at``, as a crashing C library would."""

    def __init__(self, at: int, code: int = 3) -> None:
        self.at, self.code = at, code

    def __getitem__(self, index: int) -> np.ndarray:
        if index == self.at:
            os._exit(self.code)
        return np.array([index])


class Pids:
    """Batch ``i`` holds ``[i, pid of the process that built it]``; ``sleep_at`` blocks."""

    def __init__(self, seconds: float = 0.0, sleep_at: int | None = None) -> None:
        self.seconds, self.sleep_at = seconds, sleep_at

    def __getitem__(self, index: int) -> np.ndarray:
        time.sleep(60.0 if index == self.sleep_at else self.seconds)
        return np.array([index, os.getpid()])


class Unloadable:
    """Pickles fine but fails to unpickle, as a class missing in the worker would."""

    def __getitem__(self, index: int) -> np.ndarray:
        return np.array([index])

    def __reduce__(self) -> tuple[Any, ...]:
        return (_refuse, ("no such checkpoint: /nowhere/weights.h5",))


def _refuse(message: str) -> Unloadable:
    raise FileNotFoundError(message)


class DiesOnLoad:
    """Ends the worker while it unpickles the dataset, before it reports ready."""

    def __getitem__(self, index: int) -> np.ndarray:
        return np.array([index])

    def __reduce__(self) -> tuple[Any, ...]:
        return (os._exit, (5,))


class Regression:
    """A tiny ``(x, y)`` regression set for the TensorFlow test."""

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(index)
        x = rng.random((8, 4), dtype=np.float32)
        return x, x.sum(axis=1, keepdims=True)


class BigDiesOnLoad(DiesOnLoad):
    """Pickles to more than a pipe buffer (64 KiB), then ends the worker as it loads.

    Regression: a dataset passed in Process() arguments made start() block until the
    child had read it, forever when the child died first.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_exit_after, ("x" * 200_000,))


def _exit_after(payload: str) -> None:
    os._exit(5)


class FailsAfterSlow:
    """Batch ``slow`` sleeps ``seconds``; batch ``slow + 1`` raises at once."""

    def __init__(self, slow: int = 1, seconds: float = 1.0) -> None:
        self.slow, self.seconds = slow, seconds

    def __getitem__(self, index: int) -> np.ndarray:
        if index == self.slow:
            time.sleep(self.seconds)
        if index == self.slow + 1:
            raise AugmentError(f"batch {index} is corrupt")
        return np.array([index])


class Identity:
    """Batch ``i``: ``[i, id of the dataset object in the worker, x[0], x.sum()]``."""

    def __init__(self, megabytes: int = 8) -> None:
        self.x = np.zeros(megabytes * 2**20 // 8, np.float64)
        self.tag = 0

    def __getitem__(self, index: int) -> np.ndarray:
        row = np.array([index, id(self), self.x[0], self.x.sum(), self.tag], np.float64)
        self.x[0] += 1000  # a worker's write stays in its own copy
        return row


class Imports(_PyDataset):
    """A ``keras.utils.PyDataset``: which heavy modules a worker imported to build a batch."""

    def __getitem__(self, index: int) -> np.ndarray:
        import sys

        keras_module = sys.modules.get("keras")
        lite = type(keras_module).__module__ == "feeders.workers._keras_lite"
        heavy = [name in sys.modules for name in ("tensorflow", "jax", "torch")]
        return np.array([index, lite, *heavy])


class UsesKerasOps(_PyDataset):
    """A PyDataset whose batches use ``keras.ops``: a worker then imports the real Keras."""

    def __getitem__(self, index: int) -> np.ndarray:
        ones = keras.ops.ones((2,)) * index
        return np.asarray(keras.ops.convert_to_numpy(ones))


class ExitsAfterSlow:
    """Batch ``slow`` sleeps ``seconds``; the worker on batch ``slow + 1`` ends its process."""

    def __init__(self, slow: int = 1, seconds: float = 1.0) -> None:
        self.slow, self.seconds = slow, seconds

    def __getitem__(self, index: int) -> np.ndarray:
        if index == self.slow:
            time.sleep(self.seconds)
        if index == self.slow + 1:
            os._exit(3)
        return np.array([index])
