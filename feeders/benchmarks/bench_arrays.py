"""Arrays feeder vs Keras' own ArrayDataAdapter on MNIST at batch 64, side by side.

(a) one epoch of ``feeder.as_dataset()`` (what ``fit`` consumes on TensorFlow) vs
    ``ArrayDataAdapter(...).get_tf_dataset()`` — target ≥ 2×;
(b) one epoch of plain NumPy batches vs ``get_numpy_iterator()`` — target ≥ 1×;
(c) one ``fit`` epoch through the feeder vs ``fit`` on the arrays — target ≤ 1.05×;
(d) one epoch of ``as_dataset()`` over a ``scipy.sparse`` CSR matrix (MNIST-sized rows,
    5% dense) and over a ``tf.RaggedTensor`` (rows of 1–63 values), whose batches are
    ``tf.SparseTensor``/``tf.RaggedTensor``, vs ``get_tf_dataset()`` on the same — no
    target (Keras' own gather is the reference), reported.

Run: ``python -m feeders.benchmarks.bench_arrays [--quick]`` (JSON lines on stdout).
"""

from __future__ import annotations

import argparse
import functools
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
    composite, composite_batches = _composite(args.quick, repeats, batch, drain)
    measured.update(composite)
    rows = {}
    for group, timings in measured.items():
        unit = "s/epoch" if group == "fit" else "batches/s"
        for name, seconds in timings.items():
            rows[name] = Measurement(
                name,
                unit,
                composite_batches if group in composite else num_batches,
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
    out += emit(
        [
            ratio_row(
                SUITE,
                f"as_dataset vs Keras get_tf_dataset, {kind} x",
                rows[f"feeders.as_dataset ({kind})"],
                rows[f"keras ArrayDataAdapter.get_tf_dataset ({kind})"],
                "",
            )
            for kind in ("sparse", "ragged")
        ]
    )
    return out


def _composite(
    quick: bool, repeats: int, batch: int, drain: Any
) -> tuple[dict[str, dict[str, list[float]]], int]:
    """(d): both sides' TF pipelines over sparse and ragged x, each made once (as ``fit`` does).

    Returns:
        The timings per group (``"sparse"``, ``"ragged"``) and the batches of an epoch.
    """
    import numpy as np
    import tensorflow as tf
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter
    from scipy import sparse

    import feeders

    rng = np.random.default_rng(0)
    samples = 4000 if quick else 20000
    y = rng.integers(0, 10, samples)
    lengths = rng.integers(1, 64, samples)
    inputs = {
        "sparse": sparse.random(
            samples, 784, density=0.05, format="csr", dtype=np.float32, random_state=0
        ),
        "ragged": tf.RaggedTensor.from_row_lengths(
            rng.random(int(lengths.sum()), dtype=np.float32), lengths
        ),
    }
    measured = {}
    for kind, x in inputs.items():
        ours = feeders.adapt(x, y, batch_size=batch, shuffle=True, seed=0).as_dataset()
        theirs = ArrayDataAdapter(x, y, batch_size=batch, shuffle=True).get_tf_dataset()
        measured[kind] = interleaved(
            {
                f"feeders.as_dataset ({kind})": functools.partial(drain, ours),
                f"keras ArrayDataAdapter.get_tf_dataset ({kind})": functools.partial(drain, theirs),
            },
            repeats,
        )
    return measured, -(-samples // batch)


if __name__ == "__main__":
    main()
