"""Sequences for tests/test_keras_contract.py, at module level so worker processes import them.

They import only NumPy (and Keras where a PyDataset is the point), and each
batch is id-tagged like the conformance data: ``x[:, 0]`` is the sample id.
"""

from __future__ import annotations

import os
import signal

import numpy as np


class AugmentError(Exception):
    """A user exception type that must reach the caller of model.fit unchanged."""


def id_batch(i: int, size: int = 4) -> tuple[np.ndarray, np.ndarray]:
    ids = np.arange(i * size, (i + 1) * size, dtype=np.float32)
    return np.stack([ids, 2 * ids, 3 * ids], axis=1), (ids % 5).astype(np.int64)


class RaisingAt:
    """Eight id batches; ``__getitem__(bad)`` raises ``AugmentError`` (or kills its process)."""

    def __init__(self, bad: int, *, kill: bool = False) -> None:
        self.bad, self.kill = bad, kill

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i == self.bad:
            if self.kill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise AugmentError(f"augmentation failed on batch {i}")
        return id_batch(i)
