"""The per-batch check's cost: :class:`feeders.structure.BatchChecker` on an MNIST-sized batch.

Every batch a generator, a Sequence or the worker pool yields goes through it
(NOTE [ one batch checker ]), so it is on the hot path. Rows: µs per batch for
``(x (128, 28, 28) float32, y (128,) int64)`` and the same with a float32
``sample_weight`` (its NaN/negative check included), next to a plain
``np.asarray`` of each leaf (the least any NumPy-returning path pays), timed
interleaved. Run: ``python -m feeders.benchmarks.bench_checks [--quick]``.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from feeders.benchmarks._timing import Measurement, emit, interleaved
from feeders.structure import BatchChecker, first_spec

SUITE = "checks"
CALLS = 2000


def _batches() -> dict[str, tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(0)
    x = rng.random((128, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 128)
    return {"(x, y)": (x, y), "(x, y, sample_weight)": (x, y, np.ones(128, np.float32))}


def _as_arrays(batch: tuple[Any, ...]) -> list[np.ndarray]:
    return [np.asarray(a) for a in batch]


def _loop(fn: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        for _ in range(CALLS):
            fn()

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else 7
    runs: dict[str, Callable[[], None]] = {}
    for form, batch in _batches().items():
        check = BatchChecker(first_spec(batch, lambda: "batch 0"), str, "batch 0")
        runs[f"check {form}"] = _loop(functools.partial(check, batch, 1, 0))
        runs[f"asarray {form}"] = _loop(functools.partial(_as_arrays, batch))
    seconds = interleaved(runs, repeats)
    rows = []
    for name, times in seconds.items():
        per_batch = Measurement(name, "us/batch", CALLS, {"batch": 128, "calls": CALLS})
        per_batch.seconds = [s / CALLS * 1e6 for s in times]
        rows.append(per_batch.row(SUITE))
    emit(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
