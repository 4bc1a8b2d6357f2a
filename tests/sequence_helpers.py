"""Sequences for tests/test_sequences.py, at module level so worker processes can import them.

They import only NumPy: a spawned worker then starts in well under a second.
"""

from __future__ import annotations

import math
import os

import numpy as np


class CountingSequence:
    """Records every __getitem__ and on_epoch_end call (in this process)."""

    def __init__(self, n: int = 40, batch_size: int = 8) -> None:
        self.n, self.batch_size = n, batch_size
        self.getitem_calls: list[int] = []
        self.epoch_ends = 0

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        self.getitem_calls.append(i)
        ids = np.arange(i * self.batch_size, min(self.n, (i + 1) * self.batch_size))
        return ids[:, None].astype("float32"), (ids % 2).astype("int64")

    def on_epoch_end(self) -> None:
        self.epoch_ends += 1


class ReshufflingSequence:
    """Reorders its samples at on_epoch_end; workers must see the new order."""

    def __init__(self, n: int = 24, batch_size: int = 6) -> None:
        self.batch_size = batch_size
        self.index = np.arange(n)
        self.epochs_ended = 0

    def __len__(self) -> int:
        return math.ceil(len(self.index) / self.batch_size)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ids = self.index[i * self.batch_size : (i + 1) * self.batch_size]
        pid = np.full(len(ids), os.getpid())
        return ids[:, None].astype("float32"), np.full(len(ids), self.epochs_ended), pid

    def on_epoch_end(self) -> None:
        self.epochs_ended += 1
        self.index = np.random.default_rng(self.epochs_ended).permutation(len(self.index))


class FailingSequence(CountingSequence):
    """Raises a KeyError at one batch index."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.bad = bad

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i == self.bad:
            raise KeyError(f"no such file for batch {i}")
        return super().__getitem__(i)


def _uint8(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[object, ...]:
    return (x * 255).astype(np.uint8), y, w


CHANGES = {
    "uint8": _uint8,
    "rank": lambda x, y, w: (x[:, :, None], y, w),
    "None x": lambda x, y, w: (None, y, w),
    "dict x": lambda x, y, w: ({"a": x}, y, w),
    "no weights": lambda x, y, w: (x, y),
    "short y": lambda x, y, w: (x, y[:-1], w),
    "NaN weight": lambda x, y, w: (x, y, np.where(np.arange(len(w)) == 1, np.nan, w)),
    "negative weight": lambda x, y, w: (x, y, -w),
}
"""How :class:`ChangingSequence` spoils its bad batch."""


class ChangingSequence:
    """Batches ``(x float32 (4, 3), y int64, sample_weight float32)``; batch ``bad`` is spoiled."""

    def __init__(self, bad: int, change: str, batches: int = 6) -> None:
        self.bad, self.change, self.batches = bad, change, batches

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, i: int) -> tuple[object, ...]:
        x = np.full((4, 3), i / self.batches, np.float32)
        y, w = np.arange(4) % 2, np.ones(4, np.float32)
        return CHANGES[self.change](x, y, w) if i == self.bad else (x, y, w)
