"""tf.data and generator feeders vs the same inputs passed raw to Keras, MNIST at batch 64.

(a) one ``fit`` epoch through ``feeders.adapt(ds)`` vs ``fit(ds)`` on the same
    ``tf.data`` pipeline — target ≤ 1.05×;
(b) one ``fit`` epoch through ``feeders.adapt(make_batches)`` vs ``fit(make_batches())``
    on the same Python generator — target ≤ 1.0×;
(c) diagnosis, no model: one drain of each input's ``tf.data`` path, to show
    whether the generator path (``from_generator``) is the bottleneck.

The four ``fit`` runs alternate (interleaved repeats) with identically
initialised models. Run: ``python -m feeders.benchmarks.bench_sources [--quick]``
(JSON lines on stdout, a summary on stderr); ``FEEDERS_DATA_DIR`` points at full
MNIST, else the bundled sample is used.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras

from feeders.benchmarks._timing import Measurement, emit, interleaved, ratio_row

SUITE = "sources"
BATCH = 64
WARMUP = 1


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4,000 samples, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf
    from keras.src.trainers.data_adapters.generator_data_adapter import GeneratorDataAdapter

    import feeders
    from feeders.datasets import mnist_source
    from feeders.harness.mnist import mnist_arrays

    # Keras warns "ran out of data" after every epoch of a raw generator (unknown length).
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    x, y, _, _ = mnist_arrays()
    if args.quick:  # half the bundled sample, whichever copy of MNIST was found
        x, y = x[:4000], y[:4000]
    repeats = args.repeats or (1 if args.quick else 5)
    num_batches = -(-len(x) // BATCH)
    config = {"batch_size": BATCH, "samples": len(x), "data": str(mnist_source())}

    def pipeline() -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(10_000, seed=0).batch(BATCH)

    def make_batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(x), BATCH):
            yield x[start : start + BATCH], y[start : start + BATCH]

    tf_feeder = feeders.adapt(pipeline())
    gen_feeder = feeders.adapt(make_batches)
    raw_ds = pipeline()
    models = {
        name: feeders.harness.mnist_model(seed=0) for name in ("tf", "tf raw", "gen", "gen raw")
    }

    epochs: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}

    def fit(name: str, model: keras.Model, data: Any) -> tuple[str, Callable[[], Any]]:
        timer = _EpochTimer()

        def run() -> None:
            gc.collect()  # not inside the timed epoch: the previous run's garbage
            # One epoch per call: Keras replays a raw generator's peeked batches as
            # its second epoch (2 batches), so only a first epoch compares.
            model.fit(data() if callable(data) else data, epochs=1, verbose=0, callbacks=[timer])
            epochs.setdefault(name, []).append(timer.wall[-1])
            cpu.setdefault(f"{name} [cpu]", []).append(timer.cpu[-1])

        return name, run

    # Each pair alternates on its own, so one kind's threads and garbage do not
    # land in the other kind's epochs.
    for pair in (
        [
            fit("fit(feeders.adapt(ds))", models["tf"], tf_feeder),
            fit("fit(ds)", models["tf raw"], raw_ds),
        ],
        [
            fit("fit(feeders.adapt(make_batches))", models["gen"], gen_feeder),
            fit("fit(make_batches())", models["gen raw"], make_batches),
        ],
    ):
        interleaved(dict(pair), repeats, warmup=WARMUP)
    measured = {
        # CPU seconds of the whole process are less disturbed than wall time by
        # other processes on a busy machine. Warm-up calls are dropped.
        "fit": {name: times[WARMUP:] for name, times in epochs.items()},
        "fit cpu": {name: times[WARMUP:] for name, times in cpu.items()},
        "drain": interleaved(
            {
                "drain feeders.adapt(ds).as_dataset()": _drain(tf_feeder.as_dataset()),
                "drain ds": _drain(raw_ds),
                "drain feeders.adapt(make_batches).as_dataset()": _drain(gen_feeder.as_dataset()),
                "drain Keras GeneratorDataAdapter.get_tf_dataset()": lambda: _drain(
                    GeneratorDataAdapter(make_batches()).get_tf_dataset()
                )(),
                "drain make_batches() in Python": lambda: _drain(make_batches())(),
            },
            repeats,
            warmup=WARMUP,
        ),
    }
    units = {"fit": "s/epoch", "fit cpu": "cpu s/epoch", "drain": "batches/s"}
    rows = {}
    for group, timings in measured.items():
        for name, seconds in timings.items():
            extra = {"path": group, "keras": keras.__version__, "tensorflow": tf.__version__}
            rows[name] = Measurement(
                name, units[group], num_batches, {**config, **extra}, seconds
            ).row(SUITE)
    ratios = [
        ratio_row(
            SUITE,
            f"{what}{suffix}{stat}",
            _by(rows[ours + suffix], stat),
            _by(rows[raw + suffix], stat),
            target,
        )
        for what, ours, raw, target in (
            (
                "fit epoch, tf.data feeder vs raw tf.data",
                "fit(feeders.adapt(ds))",
                "fit(ds)",
                "<= 1.05",
            ),
            (
                "fit epoch, generator feeder vs raw generator",
                "fit(feeders.adapt(make_batches))",
                "fit(make_batches())",
                "<= 1.0",
            ),
        )
        for suffix in ("", " [cpu]")
        for stat in ("", " (min)")
    ]
    out = emit([*rows.values(), *ratios])
    _summary(out)
    return out


class _EpochTimer(keras.callbacks.Callback):  # type: ignore[misc]  # Keras is untyped
    """Wall and process-CPU seconds of every epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._start = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.wall.append(time.perf_counter() - self._start[0])
        self.cpu.append(time.process_time() - self._start[1])


def _by(row: dict[str, Any], stat: str) -> dict[str, Any]:
    """``row`` as ``ratio_row`` reads it: by median, or by minimum (the least disturbed run)."""
    return {**row, "median": row["min"]} if stat else row


def _drain(iterable: Any) -> Callable[[], None]:
    def run() -> None:
        for _ in iterable:
            pass

    return run


def _summary(rows: list[dict[str, Any]]) -> None:
    first = rows[0]
    print(
        f"\nsources: {first['config']['samples']} samples ({first['config']['data']}), "
        f"batch {BATCH}, {first['repeats']} repeat(s), {first['cores']} cores",
        file=sys.stderr,
    )
    for row in rows:
        spread = f"[{row['min']:.3g} .. {row['max']:.3g}]"
        target = row["config"].get("target", "")
        print(
            f"  {row['name']:<52} {row['median']:>9.4g} {row['unit']:<9} {spread} {target}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
