"""A fake suite for tests/test_bench.py that never finishes (the runner's timeout stops it)."""

import sys
import time

if __name__ == "__main__":
    print("sleepy: sleeping", file=sys.stderr, flush=True)
    time.sleep(120)
