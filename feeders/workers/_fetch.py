"""One batch fetch with its own random generator: :func:`batch_rng` and :func:`fetch`.

Why its own module: every backend (calling thread, threads, worker processes)
fetches through :func:`fetch`, so a batch's random numbers depend only on
``(seed, epoch, index)``, never on which worker built it or how many there are.
"""

from __future__ import annotations

import random
import threading

import numpy as np

from feeders.workers._base import Batch, Dataset

__all__ = ["batch_rng", "fetch", "local"]

local = threading.local()
"""Per-thread state: ``rng`` (the batch being fetched) and, in pool threads, ``worker``."""


def batch_rng() -> np.random.Generator:
    """The random generator of the batch being fetched; call it in ``dataset.__getitem__``.

    Why: it is seeded from ``SeedSequence([seed, epoch, index])``, so a batch's
    augmentation is the same whichever worker (thread or process) builds it and
    however many there are, and differs across batches and epochs. Outside a
    pool's fetch it returns a fresh, unseeded generator, so ``dataset[i]`` still
    works when called directly (but is then not reproducible).
    """
    rng: np.random.Generator | None = getattr(local, "rng", None)
    return rng if rng is not None else np.random.default_rng()


def fetch(dataset: Dataset, seed: int, epoch: int, index: int, *, legacy: bool) -> Batch:
    """``dataset[index]`` with the batch's generator installed (and restored after)."""
    sequence = np.random.SeedSequence([seed, epoch, index])
    if legacy:
        # NOTE [ seeding the legacy global RNGs ]
        # Only in worker processes, whose globals are their own: seeding them in
        # the user's process (workers=0) or in shared threads would clobber the
        # user's own random state and still not be reproducible.
        # Two different seeds: both are Mersenne Twisters seeded the same way, so one
        # seed would make random.random() repeat np.random.random().
        numpy_seq, python_seq = sequence.spawn(2)
        np.random.seed(numpy_seq.generate_state(2))
        random.seed(int.from_bytes(python_seq.generate_state(2).tobytes(), "little"))
    previous = getattr(local, "rng", None)
    local.rng = np.random.Generator(np.random.PCG64(sequence))
    try:
        return dataset[index]
    finally:
        local.rng = previous
