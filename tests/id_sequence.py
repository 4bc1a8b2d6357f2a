"""A Sequence over id-tagged rows; imports only NumPy, so worker processes start fast."""

from __future__ import annotations

import math

import numpy as np


class IdSequence:
    """The conformance arrays as a Sequence; module level so worker processes can import it."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> None:
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        rows = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[rows], self.y[rows]
