"""Parallel batch fetching: :class:`WorkerPool` (threads or processes) and :func:`batch_rng`.

Processes move batches through shared memory (:mod:`feeders.workers.shm`);
failures come back as :class:`feeders.errors.WorkerError` or as the worker's own
exception type.

Layout: ``pool`` (the public pool: checks, epochs, choice of backend),
``_base`` (what backends share), ``_fetch`` (one seeded fetch, ``batch_rng``),
``_threads`` (calling thread and thread backends), ``_processes`` (the
parent's side of worker processes), ``_launch`` (how a worker interpreter
starts and ends with its parent), ``_worker`` (the worker's loop and the task
record), ``_serialize`` (the dataset by value, large arrays once through shared
memory), ``_keras_lite`` (Keras' ``PyDataset`` in workers without Keras'
backend: NOTE [ the worker's keras ]), ``_interrupt`` (Ctrl-C for a pool waiting
outside the main thread), ``shm`` (shared-memory slots and segments).
"""

from feeders.workers.pool import Batch, Dataset, WorkerPool, batch_rng

__all__ = ["Batch", "Dataset", "WorkerPool", "batch_rng"]
