"""grain ``MapDataset`` / ``IterDataset`` / ``DataLoader`` as a source: each pass a new ``iter()``.

Why on top of the generator source: like a torch ``DataLoader``, a grain dataset
is a factory of passes whose elements are already batches (``.batch(n)`` or a
``Batch`` operation), in grain's own deterministic order (its ``shuffle(seed)``,
its samplers). :mod:`feeders.sources.generators` then gives the rest: the spec
from one peeked batch yielded once, every batch checked, ``split()`` by batches,
resuming by drawing and dropping ``start`` batches. A ``MapDataset`` has a
length, so ``num_batches`` is exact; an ``IterDataset`` or ``DataLoader`` has
none (as in Keras, which shows no progress total for them) until the end of the
first pass, unless ``num_batches=`` is given. ``class_weight`` and
``sample_weight`` (as the batches' third part) work, which Keras refuses for grain.
Every pass restarts the dataset, so each epoch repeats grain's order; reshuffle
per epoch in grain (``ds.shuffle(seed).repeat()`` with ``steps_per_epoch``) when
that is wanted.
"""

from __future__ import annotations

from typing import Any

from feeders.sharding import Shard, StridedBatches
from feeders.sources.generators import GeneratorSource
from feeders.structure import Tree

GRAIN_KINDS = ("MapDataset", "IterDataset", "DataLoader")


def is_grain_dataset(obj: Any) -> bool:
    """A grain ``MapDataset``, ``IterDataset`` or ``DataLoader``, recognised without importing grain."""
    return any(
        cls.__name__ in GRAIN_KINDS and cls.__module__.startswith("grain")
        for cls in type(obj).__mro__
    )


def _length(dataset: Any) -> int | None:
    try:
        return len(dataset)
    except TypeError:  # an IterDataset, a DataLoader, or an infinite MapDataset
        return None


class GrainSource(GeneratorSource):
    """A grain dataset: a factory of passes (``iter(dataset)``), sharded by striding."""

    def shard(self, shard: Shard) -> Any:
        """Every process reads the pass and keeps its batches (:class:`~feeders.sharding.StridedBatches`)."""
        return StridedBatches(self, shard)


def from_grain(
    dataset: Any,
    y: Tree | None = None,
    *,
    sample_weight: Tree | None = None,
    batch_size: int | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    shuffle_buffer: int | None = None,
    num_batches: int | None = None,
) -> GrainSource:
    """Registry factory for the ``"grain"`` kind.

    ``y``, ``sample_weight`` and ``batch_size`` are always ``None`` here: its
    registry row refuses them (the batches hold them).
    """
    return GrainSource(
        lambda: iter(dataset),
        shuffle=shuffle,
        seed=seed,
        shuffle_buffer=shuffle_buffer,
        num_batches=_length(dataset) if num_batches is None else num_batches,
    )
