"""Arrays feeder vs Keras' own ArrayDataAdapter on MNIST at batch 64, side by side.

(a) one epoch of ``feeder.as_dataset()`` (what ``fit`` consumes on TensorFlow) vs
    ``ArrayDataAdapter(...).get_tf_dataset()`` — target ≥ 2×;
(b) one epoch of plain NumPy batches vs ``get_numpy_iterator()`` — target ≥ 1×;
(c) one ``fit`` epoch through the feeder vs ``fit`` on the arrays — target ≤ 1.05×.

Run: ``python -m feeders.benchmarks.bench_arrays [--quick]`` (JSON lines on stdout).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from feeders.benchmarks._timing import Measurement, emit, interleaved, ratio_row

SUITE = "arrays"


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="bundled sample, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)

    import keras
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

    import feeders
    from feeders.harness.mnist import mnist_arrays

    x, y, _, _ = mnist_arrays()
    if args.quick:
        x, y = x[:8000], y[:8000]
    repeats = args.repeats or (2 if args.quick else 5)
    batch = 64
    config = {"batch_size": batch, "samples": len(x), "shuffle": True}

    def feeder() -> feeders.Feeder:
        return feeders.adapt(x, y, batch_size=batch, shuffle=True, seed=0)

    def keras_adapter() -> ArrayDataAdapter:
        return ArrayDataAdapter(x, y, batch_size=batch, shuffle=True)

    ours_ds, keras_ds = feeder().as_dataset(), keras_adapter().get_tf_dataset()
    ours_np, keras_np = feeder(), keras_adapter()

    def drain(iterable: Iterable[Any]) -> None:
        for _ in iterable:
            pass

    num_batches = -(-len(x) // batch)
    measured = {
        "tf_dataset": interleaved(
            {
                "feeders.as_dataset": lambda: drain(ours_ds),
                "keras ArrayDataAdapter.get_tf_dataset": lambda: drain(keras_ds),
            },
            repeats,
        ),
        "numpy": interleaved(
            {
                "feeders.epoch": lambda: drain(iter(ours_np)),
                "keras ArrayDataAdapter.get_numpy_iterator": lambda: drain(
                    keras_np.get_numpy_iterator()
                ),
            },
            repeats,
        ),
    }
    model_ours, model_keras = (
        feeders.harness.mnist_model(seed=0),
        feeders.harness.mnist_model(seed=0),
    )
    fit_feeder = feeder()
    measured["fit"] = interleaved(
        {
            "fit(feeder)": lambda: model_ours.fit(fit_feeder, epochs=1, verbose=0),
            "fit(x, y)": lambda: model_keras.fit(
                x, y, batch_size=batch, shuffle=True, epochs=1, verbose=0
            ),
        },
        repeats,
    )
    rows = {}
    for group, timings in measured.items():
        unit = "s/epoch" if group == "fit" else "batches/s"
        for name, seconds in timings.items():
            rows[name] = Measurement(
                name,
                unit,
                num_batches,
                {**config, "path": group, "keras": keras.__version__},
                seconds,
            ).row(SUITE)
    out = emit(rows.values())
    out += emit(
        [
            ratio_row(
                SUITE,
                "as_dataset vs Keras get_tf_dataset",
                rows["feeders.as_dataset"],
                rows["keras ArrayDataAdapter.get_tf_dataset"],
                ">= 2.0",
            ),
            ratio_row(
                SUITE,
                "numpy epoch vs Keras get_numpy_iterator",
                rows["feeders.epoch"],
                rows["keras ArrayDataAdapter.get_numpy_iterator"],
                ">= 1.0",
            ),
            ratio_row(
                SUITE,
                "fit epoch time, feeder vs arrays",
                rows["fit(feeder)"],
                rows["fit(x, y)"],
                "<= 1.05",
            ),
        ]
    )
    return out


if __name__ == "__main__":
    main()
