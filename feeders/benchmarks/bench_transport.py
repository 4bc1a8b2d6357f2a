"""A 15 MB batch from a worker process to the parent: feeders' pool vs a pickling Queue vs memcpy.

Rows (GB/s of batch data delivered to the parent, interleaved repeats, JSON lines on stdout):
  - ``WorkerPool(processes)``: the worker copies into a shared-memory slot, the parent
    copies out (two memcpys, a ~200-byte message);
  - ``multiprocessing.Queue``: what Keras' workers do, pickling each batch through a pipe;
  - ``np.copyto in-process``: one memcpy of the batch, the ceiling for any transport
    that hands the parent its own array;
  - ratio pool / Queue, target >= 10.

Both transports use one persistent worker process, at most ``--queue`` batches
in flight, and a dataset that returns the same prebuilt array, so only the
transport is timed.

Run: ``python -m feeders.benchmarks.bench_transport [--quick]`` from the repo root.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from feeders.benchmarks._timing import Measurement, emit, interleaved, ratio_row

SUITE = "transport"
SHAPE = (32, 200, 200, 3)  # float32: 15.36 MB, an image batch


class Constant:
    """The same batch every time, built in the worker (not pickled from the parent)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape
        self._batch: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"shape": self.shape, "_batch": None}

    def __getitem__(self, index: int) -> np.ndarray:
        if self._batch is None:
            self._batch = np.full(self.shape, 0.5, dtype=np.float32)
        return self._batch


def _queue_producer(shape: tuple[int, ...], batches: Any, commands: Any) -> None:
    dataset = Constant(shape)
    while (count := commands.get()) is not None:
        for index in range(count):
            batches.put(dataset[index])


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer batches and repeats")
    parser.add_argument("--batches", type=int, default=None, help="batches per timed run")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--queue", type=int, default=4, help="max batches in flight")
    args = parser.parse_args(argv)
    batches = args.batches or (10 if args.quick else 40)
    repeats = args.repeats or (3 if args.quick else 7)

    from feeders.workers import WorkerPool

    nbytes = int(np.prod(SHAPE)) * 4
    config = {
        "batch_shape": list(SHAPE),
        "dtype": "float32",
        "batch_mb": round(nbytes / 1e6, 2),
        "batches_per_run": batches,
        "max_in_flight": args.queue,
        "worker_processes": 1,
        "start_method": "spawn",
    }
    context = multiprocessing.get_context("spawn")
    queue, commands = context.Queue(maxsize=args.queue), context.Queue()
    producer = context.Process(target=_queue_producer, args=(SHAPE, queue, commands), daemon=True)
    producer.start()
    pool = WorkerPool(
        Constant(SHAPE), workers=1, use_multiprocessing=True, max_queue_size=args.queue, seed=0
    )
    epochs = iter(range(10**9))
    source = np.full(SHAPE, 0.5, dtype=np.float32)
    target = np.empty_like(source)

    def through_pool() -> None:
        for batch in pool.run_epoch(next(epochs), range(batches)):
            assert batch.shape == SHAPE

    def through_queue() -> None:
        commands.put(batches)
        for _ in range(batches):
            assert queue.get().shape == SHAPE

    def memcpy() -> None:
        for _ in range(batches):
            np.copyto(target, source)

    try:
        seconds = interleaved(
            {
                "WorkerPool(processes) shared memory": through_pool,
                "multiprocessing.Queue pickling": through_queue,
                "np.copyto in-process": memcpy,
            },
            repeats,
            warmup=2,  # starts the workers, sizes the slots, faults the pages in
        )
    finally:
        pool.close()
        commands.put(None)
        producer.join(10)
    work = batches * nbytes / 1e9
    rows = {
        name: Measurement(name, "GB/s", work, config, timings).row(SUITE)
        for name, timings in seconds.items()
    }
    out = emit(rows.values())
    out += emit(
        [
            ratio_row(
                SUITE,
                "pool vs Queue",
                rows["WorkerPool(processes) shared memory"],
                rows["multiprocessing.Queue pickling"],
                ">= 10",
            ),
            ratio_row(
                SUITE,
                "pool vs memcpy",
                rows["WorkerPool(processes) shared memory"],
                rows["np.copyto in-process"],
                "-> 1 (one memcpy is the floor)",
            ),
        ]
    )
    return out


if __name__ == "__main__":
    main()
