"""Reference models and the runner that proves a feeder trains them as Keras does.

Names load on first use, so ``feeders --help`` (which registers ``validate``)
does not import TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "MnistResult": "feeders.harness.mnist",
    "run_mnist": "feeders.harness.mnist",
    "mnist_model": "feeders.harness.models",
    "multihead_data": "feeders.harness.multihead",
    "multihead_model": "feeders.harness.multihead",
}

__all__ = ["MnistResult", "mnist_model", "multihead_data", "multihead_model", "run_mnist"]


_SUBMODULES = ("mnist", "models", "multihead", "validate")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"feeders.harness.{name}")
    if name not in _EXPORTS:
        raise AttributeError(f"module 'feeders.harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from feeders.harness.mnist import MnistResult, run_mnist
    from feeders.harness.models import mnist_model
    from feeders.harness.multihead import multihead_data, multihead_model
