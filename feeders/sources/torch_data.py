"""A ``torch.utils.data.DataLoader`` as a source: its batches, as NumPy, each pass a new iteration.

Why on top of the generator source: a loader is a factory of passes (``iter(loader)``),
so everything :mod:`feeders.sources.generators` does holds: the first batch is
peeked once for the spec and yielded once, every batch is checked against it,
``num_batches`` is ``len(loader)`` when the loader has one, ``split()`` splits
by batches, and resuming at batch ``start`` draws and drops ``start`` batches.
What it adds: the loader's tensors become NumPy arrays (``detach().cpu().numpy()``,
no copy for CPU tensors), and when the loader was made with
``generator=torch.Generator()``, that generator is reseeded from ``(seed, epoch)``
before each pass, so its shuffling (and its workers' seeds) are reproducible and
a resumed run sees the same order. Without one, the order comes from torch's
global RNG, as in plain PyTorch.

What Keras refuses for a DataLoader works here: ``class_weight`` (also per
output), ``sample_weight`` as the batches' third part, an exact ``num_batches``,
``split()`` and a resume position. The loader's own ``num_workers`` are its own
processes; feeders adds none.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from feeders.sharding import Shard, StridedBatches
from feeders.sources._checks import resolve_seed
from feeders.sources.generators import GeneratorSource
from feeders.structure import Batch, Tree


def is_torch_dataloader(obj: Any) -> bool:
    """A ``torch.utils.data.DataLoader`` (or subclass), recognised without importing torch."""
    return any(
        cls.__name__ == "DataLoader" and cls.__module__.startswith("torch.utils.data")
        for cls in type(obj).__mro__
    )


class DataLoaderSource(GeneratorSource):
    """The batches of ``loader``, one ``iter(loader)`` per epoch, reseeded per epoch when it can be.

    Args:
        loader: a ``DataLoader`` yielding ``x``, ``(x, y)`` or ``(x, y, sample_weight)``.
        seed: reseeds ``loader.generator`` (when set) from ``(seed, epoch)`` each pass.
        shuffle, shuffle_buffer, num_batches: as for the generator source;
            ``num_batches`` defaults to ``len(loader)`` when the loader has a length.
    """

    def __init__(
        self,
        loader: Any,
        *,
        shuffle: bool = True,
        seed: int | None = None,
        shuffle_buffer: int | None = None,
        num_batches: int | None = None,
    ) -> None:
        self.loader = loader
        seed = resolve_seed(seed)
        self._reseed(seed, 0)
        super().__init__(
            lambda: _numpy_batches(loader),
            shuffle=shuffle,
            seed=seed,
            shuffle_buffer=shuffle_buffer,
            num_batches=_length(loader) if num_batches is None else num_batches,
        )

    def epoch(self, n: int, start: int = 0) -> Iterator[Batch]:
        if n > 0:
            self._reseed(self.seed, n)
        return super().epoch(n, start)

    def shard(self, shard: Shard) -> Any:
        """Every process reads the pass and keeps its batches (:class:`~feeders.sharding.StridedBatches`)."""
        return StridedBatches(self, shard)

    def _reseed(self, seed: int, n: int) -> None:
        generator = getattr(self.loader, "generator", None)
        if generator is not None:
            generator.manual_seed(int(np.random.SeedSequence([seed, n]).generate_state(1)[0]))


def _length(loader: Any) -> int | None:
    try:
        return len(loader)
    except TypeError:  # an IterableDataset without __len__
        return None


def _numpy_batches(loader: Any) -> Iterator[Any]:
    for batch in loader:
        yield _to_numpy(batch)


def _to_numpy(tree: Any) -> Tree:
    if isinstance(tree, dict):
        return {key: _to_numpy(value) for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_to_numpy(value) for value in tree)
    if hasattr(tree, "detach"):
        return tree.detach().cpu().numpy()
    return tree


def from_dataloader(
    loader: Any,
    y: Tree | None = None,
    *,
    sample_weight: Tree | None = None,
    batch_size: int | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    shuffle_buffer: int | None = None,
    num_batches: int | None = None,
) -> DataLoaderSource:
    """Registry factory for the ``"torch DataLoader"`` kind.

    ``y``, ``sample_weight`` and ``batch_size`` are always ``None`` here: its
    registry row refuses them (the batches hold them).
    """
    return DataLoaderSource(
        loader, shuffle=shuffle, seed=seed, shuffle_buffer=shuffle_buffer, num_batches=num_batches
    )
