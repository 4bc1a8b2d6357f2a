"""What every example shares: the ``--full`` flag and the guide's MNIST preparation.

Each example runs in seconds by default on a quick subset (the first 6,400
training and 1,000 test images); ``--full`` uses all of MNIST, which is the
full set when ``$FEEDERS_DATA_DIR`` holds ``mnist.npz`` and otherwise the
bundled 10,000-image sample (see ``feeders.datasets.load_mnist``).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

QUICK_TRAIN = 6_400
QUICK_TEST = 1_000


def parse_args(doc: str | None, **extra: dict[str, Any]) -> argparse.Namespace:
    """``--full`` plus the example's own options (``name=dict(add_argument kwargs)``)."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument(
        "--full", action="store_true", help="all of MNIST (default: a quick subset)"
    )
    for name, kwargs in extra.items():
        parser.add_argument(f"--{name.replace('_', '-')}", **kwargs)
    return parser.parse_args()


def mnist(full: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x_train, y_train, x_test, y_test`` as the guide prepares them (784 floats in [0, 1])."""
    from feeders.harness.mnist import mnist_arrays

    x_train, y_train, x_test, y_test = mnist_arrays()
    if not full:
        x_train, y_train = x_train[:QUICK_TRAIN], y_train[:QUICK_TRAIN]
        x_test, y_test = x_test[:QUICK_TEST], y_test[:QUICK_TEST]
    return x_train, y_train, x_test, y_test
