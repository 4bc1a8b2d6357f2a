"""The conformance data and the ``Case`` type; each source kind adds ``case_<kind>.py``.

Why the data looks like this: row ``i`` of ``x`` is ``[i, 2i, 3i]`` and its label
is ``i % 5``, so a batch tells which samples it holds and whether x and y were
kept together, whatever order or source produced it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import feeders

NUM_SAMPLES = 103
BATCH_SIZE = 10
NUM_CLASSES = 5


def conformance_arrays(n: int = NUM_SAMPLES) -> tuple[np.ndarray, np.ndarray]:
    ids = np.arange(n, dtype=np.float32)
    x = np.stack([ids, 2 * ids, 3 * ids], axis=1)
    y = np.arange(n, dtype=np.int64) % NUM_CLASSES
    return x, y


@dataclass(frozen=True)
class Case:
    """How to build one source kind's feeder over the conformance data.

    Args:
        make: ``make(x, y, batch_size=, shuffle=, seed=) -> Feeder``.
        reshuffles: ``shuffle=True`` gives a new seeded order each epoch.
        exact_batches: batches have exactly ``batch_size`` rows but the last.
    """

    name: str
    make: Callable[..., feeders.Feeder]
    reshuffles: bool = True
    exact_batches: bool = True

    def __str__(self) -> str:
        return self.name
