"""DataWaitMonitor's overhead on the MNIST fit, and the worker pool's counters per configuration.

(a) one ``fit`` epoch of the guide's MNIST model, batch 64, with and without
    ``DataWaitMonitor`` — on the arrays feeder (native tf.data path) and on a
    Sequence feeder (the Python path the monitor times) — target ≤ 1.02×; on a
    busy 2-core machine this end-to-end ratio moves by ±10 % between runs, so
(a') the monitor's own hooks are also timed alone, over the same number of
    steps as a fit epoch: their seconds over the fit epoch's are its overhead
    without the noise — target ≤ 0.02; the "(min)" ratios compare fastest repeats;
(b) one epoch of a Sequence whose ``__getitem__`` does per-sample Python work
    (random shifts and noise, the kind of augmentation that holds the GIL), drained through
    ``WorkerPool`` in each configuration (calling thread, 2 threads, 2
    processes): batches/s, and the pool's counters in the row's config
    (batches per worker, mean queue occupancy, seconds the consumer waited).

Fits and drains alternate (interleaved repeats), models identically initialised.
Run: ``python -m feeders.benchmarks.bench_monitor [--quick]`` (JSON lines on stdout);
``FEEDERS_DATA_DIR`` points at full MNIST, else the bundled sample is used.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from feeders.benchmarks._timing import Measurement, emit, interleaved, ratio_row
from feeders.workers import batch_rng

SUITE = "monitor"
BATCH = 64


class MnistBatches:
    """MNIST batches for a Sequence feeder; importable (and TF-free) for worker processes."""

    def __init__(self, x: np.ndarray, y: np.ndarray, shifts: bool = False) -> None:
        self.x, self.y, self.shifts = x, y, shifts

    def __len__(self) -> int:
        return math.ceil(len(self.x) / BATCH)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        x = self.x[index * BATCH : (index + 1) * BATCH]
        y = self.y[index * BATCH : (index + 1) * BATCH]
        if not self.shifts:
            return x, y
        rng = batch_rng()
        out = np.empty_like(x)
        for i, image in enumerate(x.reshape(-1, 28, 28)):  # per sample, as augmentation code is
            moved = np.roll(image, rng.integers(-2, 3, 2), (0, 1))
            out[i] = np.clip(moved + rng.normal(0.0, 0.05, moved.shape), 0.0, 1.0).ravel()
        return out, y


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 samples, 2 repeats (else 5)")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)

    import keras

    import feeders
    from feeders.callbacks import DataWaitMonitor
    from feeders.datasets import mnist_source
    from feeders.harness.mnist import mnist_arrays

    x, y, _, _ = mnist_arrays()
    if args.quick:
        x, y = x[:2000], y[:2000]
    repeats = args.repeats or (2 if args.quick else 5)
    num_batches = math.ceil(len(x) / BATCH)
    config = {"batch_size": BATCH, "samples": len(x), "data": str(mnist_source())}

    arrays = feeders.adapt(x, y, batch_size=BATCH, shuffle=True, seed=0)
    sequence = feeders.adapt(MnistBatches(x, y), shuffle=True, seed=0)
    runs: dict[str, Callable[[], Any]] = {}
    for label, feeder in (("arrays", arrays), ("sequence", sequence)):
        for monitored in (False, True):
            model = feeders.harness.mnist_model(seed=0)
            callbacks = [DataWaitMonitor(feeder)] if monitored else []
            name = f"fit({label} feeder){' + DataWaitMonitor' if monitored else ''}"
            runs[name] = _fit(model, feeder, callbacks)
    print(f"monitor: {len(runs)} fits x {repeats} on {len(x)} samples", file=sys.stderr)
    fits = interleaved(runs, repeats)
    rows = {
        name: Measurement(
            name, "s/epoch", num_batches, {**config, "keras": keras.__version__}, seconds
        ).row(SUITE)
        for name, seconds in fits.items()
    }
    ratios = [
        ratio_row(
            SUITE,
            f"fit epoch with DataWaitMonitor vs without, {label} feeder{suffix}",
            pick(rows[f"fit({label} feeder) + DataWaitMonitor"]),
            pick(rows[f"fit({label} feeder)"]),
            "<= 1.02",
        )
        for label in ("arrays", "sequence")
        for suffix, pick in (("", _median), (" (min)", _fastest))
    ]
    hooks = Measurement(
        "DataWaitMonitor hooks alone",
        "s/epoch",
        num_batches,
        {**config, "steps": num_batches},
        interleaved({"hooks": _hooks(sequence, num_batches)}, repeats * 5)["hooks"],
    ).row(SUITE)
    ratios.append(
        ratio_row(
            SUITE,
            "DataWaitMonitor hooks vs fit epoch, sequence feeder",
            hooks,
            rows["fit(sequence feeder) + DataWaitMonitor"],
            "<= 0.02",
        )
    )
    out = emit([*rows.values(), hooks, *ratios])
    out += emit(_pool_rows(x, y, repeats, config))
    return out


def _median(row: dict[str, Any]) -> dict[str, Any]:
    return row


def _fastest(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its fastest repeat as the median: load from other processes only adds time."""
    return {**row, "median": row["min"]}


def _fit(model: Any, feeder: Any, callbacks: list[Any]) -> Callable[[], Any]:
    return lambda: model.fit(feeder, epochs=1, verbose=0, callbacks=callbacks)


def _hooks(feeder: Any, steps: int) -> Callable[[], None]:
    """What Keras calls on the monitor in an epoch of ``steps`` training steps."""
    from feeders.callbacks import DataWaitMonitor

    monitor = DataWaitMonitor(feeder)
    monitor.set_params({"steps": steps, "epochs": 1})

    def epoch() -> None:
        monitor.on_epoch_begin(0)
        for step in range(steps):
            monitor.on_train_batch_begin(step)
        monitor.on_epoch_end(0, {"loss": 0.0})

    return epoch


def _pool_rows(
    x: np.ndarray, y: np.ndarray, repeats: int, config: dict[str, Any]
) -> list[dict[str, Any]]:
    """One row per pool configuration, with the last epoch's counters in its config."""
    import feeders

    pools: dict[str, dict[str, Any]] = {
        "WorkerPool(workers=0)": {"workers": 0},
        "WorkerPool(workers=2, threads)": {"workers": 2},
        "WorkerPool(workers=2, processes)": {"workers": 2, "use_multiprocessing": True},
    }
    made = {
        name: feeders.adapt(MnistBatches(x, y, shifts=True), shuffle=True, seed=0, **options)
        for name, options in pools.items()
    }
    print(f"monitor: {len(made)} pool configurations x {repeats}", file=sys.stderr)
    try:
        drains = interleaved({name: _drain(feeder) for name, feeder in made.items()}, repeats)
        rows = []
        for name, seconds in drains.items():
            stats = made[name].pipeline_stats()
            extra = {
                **config,
                **pools[name],
                "max_queue_size": 10,
                "getitem": "per-sample shift + noise",
                "pool": stats["pool"],
            }
            rows.append(
                Measurement(name, "batches/s", math.ceil(len(x) / BATCH), extra, seconds).row(SUITE)
            )
        return rows
    finally:
        for feeder in made.values():
            feeder.close()


def _drain(feeder: Any) -> Callable[[], None]:
    def run() -> None:
        for _ in feeder.get_numpy_iterator():
            pass

    return run


if __name__ == "__main__":
    main()
