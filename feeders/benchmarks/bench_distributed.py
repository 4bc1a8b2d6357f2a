"""Image files through tf.data service (1 and 2 local workers) vs the same graph read directly.

Rows (images/s unless stated, interleaved repeats, JSON lines on stdout, a table on stderr):
  - `direct`: the very graph the workers run (`feeders.service_graph.service_graph` of an
    `ImageFileSequence`: pure-TF read → decode → antialiased resize, 32x200x200x3 float32
    batches), iterated in this process;
  - `service, N worker(s)`: `feeder.distribute(service)` in `distributed_epoch` mode,
    with a dispatcher and N workers started as `feeders serve` processes on 127.0.0.1;
  - `hop only` (batches/s): 15 MB batches of zeros made on the worker, through the service
    with 1 worker vs directly: the transport alone (serialise, gRPC, NumPy on the client);
  - ratios of the whole-epoch rates; each row's epoch split in two: per batch in steady
    state (first to last batch of an epoch, ms/batch) and per epoch (time to the first batch
    plus time from the last batch to the end of the job, s/epoch: TensorFlow's client learns
    that a job ended at its next task refresh). The hop's cost is a service row's figure
    minus `direct`'s; the suite reports both rather than a difference of noisy times.

Every epoch is a new service job (as each `fit` epoch is). On a machine with few cores the
workers and the client share them: more workers add no CPU.

Run: `python -m feeders.benchmarks.bench_distributed [--quick]` (`--quick`: 128 files, 1 repeat).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from feeders.benchmarks._timing import Measurement, emit, environment, interleaved, ratio_row
from feeders.benchmarks.bench_images import image_files

SUITE = "distributed"
IMAGE_SIZE = (200, 200)
BATCH = 32
START_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def cluster(workers: int, logs: Path) -> Iterator[str]:
    """A `feeders serve` dispatcher and `workers` workers on free ports; yields its address."""
    port = free_port()
    commands = [["dispatcher", "--port", str(port)]]
    for _ in range(workers):
        w = free_port()
        address = ["--worker-address", f"localhost:{w}"]
        commands.append(["worker", "--dispatcher", f"localhost:{port}", "--port", str(w), *address])
    processes: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for i, args in enumerate(commands):
            log = logs / f"{port}-{i}.log"
            with log.open("wb") as out:
                processes.append(
                    (
                        subprocess.Popen(
                            [sys.executable, "-m", "feeders", "serve", *args],
                            stdout=subprocess.DEVNULL,
                            stderr=out,
                        ),
                        log,
                    )
                )
        deadline = time.monotonic() + START_S
        for process, log in processes:
            while b"listening on" not in log.read_bytes():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"a server did not start:\n{log.read_text()}")
                time.sleep(0.2)
        yield f"grpc://localhost:{port}"
    finally:
        for process, _ in processes:
            process.terminate()
        for process, _ in processes:
            process.wait(timeout=60)


def drain(batches: Iterable[Any], expected: int, marks: list[tuple[float, float, float]]) -> None:
    """Read one epoch; record (first batch, last batch, end of epoch) in seconds from the start."""
    start = time.perf_counter()
    first = last = 0.0
    seen = 0
    for batch in batches:
        last = time.perf_counter() - start
        first = first or last
        seen += int(batch[0].shape[0])
    marks.append((first, last, time.perf_counter() - start))
    if seen != expected:
        raise RuntimeError(f"a loader yielded {seen} rows, expected {expected}")


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128 files, 1 repeat")
    parser.add_argument("--files", type=int, default=None, help="number of JPEGs (default 2000)")
    parser.add_argument("--repeats", type=int, default=None, help="timed epochs (default 3)")
    args = parser.parse_args(argv)
    count = args.files or (128 if args.quick else 2000)
    repeats = args.repeats or (1 if args.quick else 3)

    import numpy as np
    import tensorflow as tf

    import feeders
    from feeders.distributed import distribute
    from feeders.service_graph import service_graph

    files = image_files(count, None)
    sequence = feeders.ImageFileSequence(
        files, np.arange(count) % 10, batch_size=BATCH, image_size=IMAGE_SIZE, shuffle=True, seed=0
    )
    images = feeders.adapt(sequence)
    direct = service_graph(images.source, 0, "distributed_epoch").dataset.prefetch(2)
    zeros_batches = max(count // BATCH, 1)
    zeros = tf.data.Dataset.range(zeros_batches).map(
        lambda i: (tf.zeros((BATCH, *IMAGE_SIZE, 3)), tf.fill([BATCH], i))
    )
    batches = {"images": math.ceil(count / BATCH), "zeros": zeros_batches}
    rows_per = {"images": count, "zeros": zeros_batches * BATCH}
    loaders: dict[str, tuple[Iterable[Any], str]] = {
        "direct": (direct, "images"),
        "hop only: direct": (zeros, "zeros"),
    }
    marks: dict[str, list[tuple[float, float, float]]] = {}
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for workers in (1, 2):
            service = stack.enter_context(cluster(workers, logs))
            name = f"service, {workers} worker{'s' * (workers > 1)}"
            loaders[name] = (distribute(images, service, "distributed_epoch"), "images")
            if workers == 1:
                hop = distribute(feeders.adapt(zeros), service, "distributed_epoch")
                loaders["hop only: service, 1 worker"] = (hop, "zeros")
        runs: dict[str, Callable[[], None]] = {
            name: functools.partial(drain, loader, rows_per[kind], marks.setdefault(name, []))
            for name, (loader, kind) in loaders.items()
        }
        print(f"timing {len(runs)} rows x {repeats} epochs of {count} files", file=sys.stderr)
        seconds = interleaved(runs, repeats, warmup=1)
    config = {"files": count, "batch_size": BATCH, "image_size": list(IMAGE_SIZE)}
    rows = emit(
        Measurement(
            name,
            "batches/s" if kind == "zeros" else "images/s",
            batches[kind] if kind == "zeros" else count,
            {**config, "timed": "whole epochs (one service job each), rows interleaved"},
            seconds[name],
        ).row(SUITE)
        for name, (_, kind) in loaders.items()
    )
    by = {row["name"]: row for row in rows}
    derived = [
        ratio_row(SUITE, f"{a} / {b}", by[a], by[b], "report")
        for a, b in (
            ("service, 1 worker", "direct"),
            ("service, 2 workers", "direct"),
            ("service, 2 workers", "service, 1 worker"),
        )
    ]
    for name, (_, kind) in loaders.items():
        # Each loader's own times, never a difference of two noisy ones (which can go negative):
        # compare the service rows with `direct` (same graph) and `hop only: direct`.
        n = batches[kind]
        steady = [(last - first) / max(n - 1, 1) * 1000 for first, last, _ in marks[name][1:]]
        edges = [first + total - last for first, last, total in marks[name][1:]]
        derived.append(
            derived_row(f"steady per batch: {name}", statistics.median(steady), "ms/batch", name)
        )
        derived.append(
            derived_row(f"job start + end: {name}", statistics.median(edges), "s/epoch", name)
        )
    rows += emit(derived)
    print(summary(rows), file=sys.stderr)
    return rows


def derived_row(name: str, value: float, unit: str, loader: str) -> dict[str, Any]:
    """A figure computed from the per-epoch marks of one loader's row."""
    return {
        "suite": SUITE,
        "name": name,
        "value": value,
        "unit": unit,
        "min": value,
        "median": value,
        "max": value,
        "repeats": 1,
        "config": {"loader": loader, "batch_size": BATCH},
        **environment(),
    }


def summary(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'row':<38} {'median':>10}  unit"]
    lines += [f"{r['name']:<38} {r['median']:>10.3f}  {r['unit']}" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
