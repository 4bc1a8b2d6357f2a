"""A fake suite for tests/test_bench.py that emits one row, then fails."""

import sys

from feeders.benchmarks._timing import Measurement, emit

if __name__ == "__main__":
    emit([Measurement("before the crash", "batches/s", 10, {}, [1.0]).row("broken")])
    print("broken: about to fail", file=sys.stderr)
    raise RuntimeError("the broken suite failed on purpose")
