"""Parallel batch fetching: :class:`WorkerPool` (threads or processes) and :func:`batch_rng`.

Processes move batches through shared memory (:mod:`feeders.workers.shm`);
failures come back as :class:`feeders.errors.WorkerError` or as the worker's own
exception type.
"""

from feeders.workers.pool import Batch, Dataset, WorkerPool, batch_rng

__all__ = ["Batch", "Dataset", "WorkerPool", "batch_rng"]
