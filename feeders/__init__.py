"""feeders: any training input → correct, fast, weighted batches for Keras.

>>> import feeders, numpy as np
>>> feeder = feeders.adapt(np.zeros((10, 3)), np.arange(10), batch_size=4, shuffle=False)
>>> feeder.num_batches
3
"""

from feeders import datasets, harness
from feeders.adapt import adapt
from feeders.feeder import Feeder, Source
from feeders.registry import SourceKind, register_source, unregister_source
from feeders.structure import ArraySpec, BatchSpec

__all__ = [
    "ArraySpec",
    "BatchSpec",
    "Feeder",
    "Source",
    "SourceKind",
    "adapt",
    "datasets",
    "harness",
    "register_source",
    "unregister_source",
]
