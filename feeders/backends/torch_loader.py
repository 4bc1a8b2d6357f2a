"""The PyTorch backend's batches: a ``DataLoader`` over the feeder's own batches.

Why a ``DataLoader`` at all: Keras' torch trainer iterates whatever
``get_torch_dataloader()`` returns, and users (and callbacks) expect a
``torch.utils.data.DataLoader`` there. Why ``num_workers=0``: the batches are
already made by feeders' own :class:`~feeders.workers.WorkerPool` (threads or
processes, in order, seeded); a second pool of torch worker processes on top
would fork the pool and reorder nothing for the better. The loader only hands
the batches over, unchanged in structure (an identity ``collate_fn``: torch's
default would turn tuples into lists).

Where a batch lives:

- **Without CUDA**: each NumPy leaf becomes a tensor with ``torch.from_numpy``,
  sharing its memory (no copy). Read-only arrays (e.g. a memmap opened with
  ``mode="r"``) are copied once, because torch tensors are writable.
- **With CUDA**: each tensor is copied into pinned (page-locked) host memory
  and sent to the GPU with ``non_blocking=True`` one batch ahead, so the copy
  runs while the model trains on the batch before (Keras' own
  ``convert_to_tensor`` would copy synchronously from pageable memory).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from feeders.rescaling import torch_rescaled

# Keras' torch backend refuses these (uint32 -> int64, as keras.src.backend.torch.core does).
_WIDEN = {np.dtype("uint32"): np.dtype("int64")}


def torch_dataloader(
    make_pass: Callable[[], Iterator[Any]],
    device: str | None = None,
    *,
    rescale: float | None = None,
) -> torch.utils.data.DataLoader:  # type: ignore[type-arg]
    """A ``DataLoader`` whose every iteration is one pass (``make_pass()``) of NumPy batches.

    Args:
        make_pass: returns the batches of the next pass (the feeder's epoch counter advances).
        device: where batches go; ``None`` (the default): ``"cuda"`` when
            ``torch.cuda.is_available()``, else they stay on the CPU.
        rescale: convert uint8 leaves of ``x`` to float32 ``x * rescale`` once on
            ``device`` (:mod:`feeders.rescaling`); ``None``: as they are.

    Returns:
        ``torch.utils.data.DataLoader(batch_size=None, num_workers=0)`` yielding
        the batches as tensors, with the structure of ``make_pass()``'s batches.
    """
    if device is None and torch.cuda.is_available():
        device = "cuda"
    dataset = _Batches(make_pass, None if device is None else torch.device(device), rescale)
    return torch.utils.data.DataLoader(
        dataset, batch_size=None, num_workers=0, collate_fn=_as_is, pin_memory=False
    )


def to_tensors(batch: Any) -> Any:
    """Every NumPy leaf of ``batch`` as a CPU tensor sharing its memory (copied if read-only)."""

    def convert(leaf: np.ndarray) -> torch.Tensor:
        wider = _WIDEN.get(leaf.dtype)
        if wider is not None:
            leaf = leaf.astype(wider)
        elif not leaf.flags.writeable:
            leaf = leaf.copy()
        return torch.from_numpy(leaf)

    return _map(convert, batch)


class _Batches(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    """Each iteration is the next pass of the feeder, as tensors (sent ahead to ``device``)."""

    def __init__(
        self,
        make_pass: Callable[[], Iterator[Any]],
        device: torch.device | None,
        rescale: float | None = None,
    ):
        self.make_pass, self.device, self.rescale = make_pass, device, rescale

    def __iter__(self) -> Iterator[Any]:
        tensors: Iterator[Any] = (to_tensors(batch) for batch in self.make_pass())
        if self.device is not None:
            tensors = _sent_ahead(tensors, self.device)
        scale = self.rescale
        if scale is None:
            return tensors
        return (torch_rescaled(batch, scale) for batch in tensors)


def _sent_ahead(batches: Iterator[Any], device: torch.device) -> Iterator[Any]:
    """Pinned copies sent to ``device`` without blocking, one batch ahead of the consumer."""

    def send(leaf: torch.Tensor) -> torch.Tensor:
        return leaf.pin_memory().to(device, non_blocking=True)

    pending: Any = None
    have = False
    for batch in batches:
        sent = _map(send, batch)
        if have:
            yield pending
        pending, have = sent, True
    if have:
        yield pending


def _map(fn: Callable[[Any], Any], tree: Any) -> Any:
    """``fn`` on every array leaf; dicts, lists and tuples keep their type, ``None`` stays."""
    if tree is None:
        return None
    if isinstance(tree, dict):
        return {key: _map(fn, value) for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_map(fn, value) for value in tree)
    return fn(tree)


def _as_is(batch: Any) -> Any:
    return batch
