"""What the pool and its backends share: the dataset contract, epoch counters, the backend protocol.

Why apart from :mod:`feeders.workers.pool`: the backends (:mod:`._threads`,
:mod:`._processes`) implement :class:`Backend` and fill :class:`EpochStats`
without importing the public pool, which chooses among them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

__all__ = ["JOIN_S", "POLL_S", "Backend", "Batch", "Dataset", "EpochStats"]

Batch: TypeAlias = Any
"""What ``dataset[i]`` returns: an ndarray, or a tuple/list/dict nesting of ndarrays."""

POLL_S = 1.0  # how often a blocked wait re-checks that every worker is alive
JOIN_S = 0.5  # how long shutdown lets idle workers exit on their own before SIGTERM


class Dataset(Protocol):
    """Anything indexable by batch number; ``keras.utils.PyDataset`` qualifies."""

    def __getitem__(self, index: int, /) -> Batch: ...


@dataclass
class EpochStats:
    """Counters of one epoch, filled by the backend; see :attr:`WorkerPool.stats`."""

    epoch: int
    workers: int
    batches_per_worker: list[int] = field(default_factory=list)
    requests: int = 0
    occupancy_sum: int = 0
    wait_s: float = 0.0

    def __post_init__(self) -> None:
        self.batches_per_worker = [0] * max(self.workers, 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "batches": sum(self.batches_per_worker),
            "batches_per_worker": list(self.batches_per_worker),
            "mean_queue_occupancy": self.occupancy_sum / max(self.requests, 1),
            "consumer_wait_s": self.wait_s,
        }


class Backend(Protocol):
    """How batches get built: in the calling thread, in threads, or in processes."""

    def begin(self, dataset: Dataset, epoch: int, order: list[int], stats: EpochStats) -> None:
        """Prepare an epoch (start workers if needed)."""

    def next(self, position: int) -> Batch:
        """The batch at ``position`` of the epoch, waiting for it if needed."""

    def update(self, dataset: Dataset) -> None:
        """Take the user's new dataset state (pickle it now, for processes)."""

    def abort(self) -> None:
        """Drop the rest of an epoch left part-way."""

    def shutdown(self) -> None:
        """Release everything; idempotent, and safe from a finalizer."""
