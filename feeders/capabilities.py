"""What a source *may* do beyond the :class:`~feeders.feeder.Source` contract, as small Protocols.

Why Protocols: plug-ins implement these without inheriting, and callers ask
``isinstance(source, Splittable)`` rather than probing with ``getattr``, so each
optional ability has one written definition (STYLE.md, "Capabilities are
Protocols"). Keras-free and TensorFlow-free: worker processes and the
no-TensorFlow install import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from feeders.structure import Batch

if TYPE_CHECKING:
    from feeders.service_graph import ServiceGraph
    from feeders.workers import WorkerPool

__all__ = [
    "HasPool",
    "InOrder",
    "NativeTF",
    "Rescaled",
    "Servable",
    "Shardable",
    "Sharded",
    "SinglePass",
    "Splittable",
]


@runtime_checkable
class InOrder(Protocol):
    """A source that can give an epoch in its natural order, whatever its shuffling.

    Why: ``predict``/``evaluate`` (and ``fit(shuffle=False)``) must see the
    samples in order. ``counts=False`` is such an inference pass: it leaves
    the source's epoch state alone (no ``on_epoch_end``, no ``set_epoch``).
    Sources without it are read with ``epoch(0)`` for inference passes.
    """

    def epoch_in_order(self, n: int, start: int = 0, *, counts: bool = True) -> Iterator[Batch]:
        """Epoch ``n``'s batches from ``start`` on, unshuffled."""
        ...


@runtime_checkable
class NativeTF(Protocol):
    """A source that builds its batches with TF ops (``Feeder.as_dataset`` uses them)."""

    def as_dataset(self, claim_pass: Callable[[], tuple[int, int]], *, shuffle: bool = True) -> Any:
        """A ``tf.data.Dataset`` whose every iteration calls ``claim_pass()`` for ``(epoch, start)``.

        ``shuffle=False``: the natural order. May return ``None`` to decline
        (e.g. memory-mapped arrays stay on the NumPy path).
        """
        ...


@runtime_checkable
class Servable(Protocol):
    """A source that can be read through tf.data service (:func:`feeders.distribute`).

    Why a graph: a service worker runs a dataset graph and nothing else, so each kind
    builds its batches from TF ops alone (:mod:`feeders.service_graph` has the shared
    row-batch graph, ``rows_graph``, and the checks). A source whose batches only Python
    can make may implement this to refuse with its own reason
    (``raise feeders.service_graph.not_servable("a Python generator")``).
    """

    def service_graph(self, epoch: int, mode: str) -> ServiceGraph:
        """Epoch ``epoch``'s batches as a pure-TF graph, for ``processing_mode=mode``.

        Raises:
            NotServableError: the batches need Python code (say which, and the fix).
        """
        ...


@runtime_checkable
class Splittable(Protocol):
    """A source that can split off its last samples (or batches) as validation data."""

    def split(self, at: int | float) -> tuple[Any, Any]:
        """``(train, validation)`` sources; ``at`` is a count or a fraction."""
        ...


@runtime_checkable
class HasPool(Protocol):
    """A source whose batches come from a :class:`~feeders.workers.WorkerPool`."""

    @property
    def pool(self) -> WorkerPool:
        """The pool; its ``stats`` describe the last epoch."""
        ...


@runtime_checkable
class SinglePass(Protocol):
    """A source that may be read only once (a plain iterator); ``single_pass`` says if it is."""

    single_pass: bool


@runtime_checkable
class Shardable(Protocol):
    """A source that can be read as one data-parallel shard (:mod:`feeders.sharding`)."""

    def shard(self, shard: Any) -> Any:
        """The source for :class:`~feeders.sharding.Shard` ``shard`` of the same global order."""
        ...


@runtime_checkable
class Sharded(Protocol):
    """A source read as a shard; ``process_shard`` is its :class:`~feeders.sharding.Shard` or ``None``."""

    process_shard: Any


@runtime_checkable
class Rescaled(Protocol):
    """A source whose uint8 ``x`` the model gets as float32 ``x * rescale`` (``None``: as is).

    Why: uint8 batches are 4x fewer bytes through the worker pool's shared memory and
    over the host-to-device copy, so the conversion happens where the consumer runs:
    a cast and multiply in the ``tf.data`` graph, on the device for JAX and PyTorch
    (:mod:`feeders.rescaling`). ``Feeder.epoch()`` still yields the uint8 batches.
    """

    @property
    def rescale(self) -> float | None:
        """The factor, e.g. ``1 / 255`` for pixels in [0, 1]; ``None``: no conversion."""
        ...
