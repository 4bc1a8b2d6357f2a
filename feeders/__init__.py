"""feeders: any training input → correct, fast, weighted batches for Keras.

>>> import feeders, numpy as np
>>> feeder = feeders.adapt(np.zeros((10, 3)), np.arange(10), batch_size=4, shuffle=False)
>>> feeder.num_batches
3

Names load on first use (PEP 562): worker processes import
``feeders.workers`` without paying for TensorFlow, which ``Feeder`` needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "adapt": "feeders.dispatch",
    "AdaptOptions": "feeders.dispatch",
    "Feeder": "feeders.feeder",
    "Source": "feeders.feeder",
    "SourceKind": "feeders.registry",
    "register_source": "feeders.registry",
    "unregister_source": "feeders.registry",
    "ArraySpec": "feeders.structure",
    "BatchSpec": "feeders.structure",
    "WorkerError": "feeders.errors",
    "batch_rng": "feeders.workers",
    "ImageFileSequence": "feeders.images",
}
_SUBMODULES = ("datasets", "harness", "callbacks", "distributed")

__all__ = [
    "AdaptOptions",
    "ArraySpec",
    "BatchSpec",
    "Feeder",
    "ImageFileSequence",
    "Source",
    "SourceKind",
    "WorkerError",
    "adapt",
    "batch_rng",
    "callbacks",
    "datasets",
    "distributed",
    "harness",
    "register_source",
    "unregister_source",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"feeders.{name}")
    else:
        raise AttributeError(f"module 'feeders' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from feeders import datasets, harness
    from feeders.dispatch import AdaptOptions, adapt
    from feeders.errors import WorkerError
    from feeders.feeder import Feeder, Source
    from feeders.images import ImageFileSequence
    from feeders.registry import SourceKind, register_source, unregister_source
    from feeders.structure import ArraySpec, BatchSpec
    from feeders.workers import batch_rng
