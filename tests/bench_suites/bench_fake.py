"""A fake suite for tests/test_bench.py: rows in every shape a real suite emits, instantly."""

import sys

from feeders.benchmarks._timing import Measurement, emit, environment, ratio_row

SUITE = "fake"

if __name__ == "__main__":
    quick = "--quick" in sys.argv[1:]
    print("fake: timing 3 loaders", file=sys.stderr)
    config = {"quick": quick, "batch_size": 8}
    rows = [
        Measurement("feeders loader", "images/s", 800, config, [1.0, 1.1, 0.9]).row(SUITE),
        Measurement("baseline loader", "images/s", 400, config, [1.0, 1.2]).row(SUITE),
        Measurement("feeders.epoch", "batches/s", 50, config, [0.5]).row(SUITE),
    ]
    emit(rows)
    emit([ratio_row(SUITE, "ours vs baseline", rows[0], rows[1], ">= 1.5")])
    emit(
        [
            {
                "suite": SUITE,
                "name": "torch loader",
                "skipped": "torch is not importable",
                **environment(),
            }
        ]
    )
