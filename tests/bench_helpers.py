"""Sources for the profile and quiet tests (`feeders.bench.profile`, `feeders.quiet`); picklable.

`GilSleepSequence` sleeps *holding the GIL* (``ctypes.PyDLL`` keeps it during the
call): like pure-Python decoding, threads cannot overlap it and processes can,
yet it needs no CPU, so the comparison holds on a loaded machine.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

import feeders

_LIBC = ctypes.PyDLL(None)


class GilSleepSequence:
    """24 batches of 8 images (8x8x1), each taking ``sleep_ms`` with the GIL held."""

    def __init__(self, sleep_ms: int = 30, batches: int = 24) -> None:
        self.sleep_ms = sleep_ms
        self.batches = batches

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        _LIBC.usleep(self.sleep_ms * 1000)
        return np.full((8, 8, 8, 1), index, np.float32), np.full(8, index % 10)


def small_arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((512, 4), dtype=np.float32), rng.integers(0, 2, 512)


def make_sleepy_feeder(workers: int = 0, use_multiprocessing: bool = False) -> Any:
    """What a user's `--feeder` function looks like when it takes the worker knobs."""
    return feeders.adapt(
        GilSleepSequence(), workers=workers, use_multiprocessing=use_multiprocessing
    )


def make_arrays_feeder() -> Any:
    x, y = small_arrays()
    return feeders.adapt(x, y, batch_size=32)


class TensorFlowSequence:
    """4 batches of 8 made with TensorFlow in the worker: its start-up lines come from there."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        import tensorflow as tf

        x = tf.fill((8, 2), float(index)).numpy()
        return x, np.full(8, index)
