"""What a model receives from feeders for sparse and ragged inputs, on the backend in $KERAS_BACKEND.

Run as ``python tests/scripts/sparse_ragged_batches.py [CASE...]`` (one process per backend:
Keras picks its backend at import). Prints one JSON object: per case, for
``fit`` (``shuffle=False``) then ``predict``, the kind of tensor the model's
first layer received (``dense``, ``sparse``, ``ragged``) and its values made
dense (ragged rows padded with zeros to ``WIDTH``), plus the NumPy batches of
``Feeder.epoch(0, shuffle=False)`` the same way. tests/test_sparse_ragged.py compares them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from scipy import sparse

import feeders

BACKEND = keras.backend.backend()
WIDTH = 4
DENSE = np.arange(32, dtype=np.float32).reshape(8, WIDTH) * (np.arange(32).reshape(8, 4) % 3 == 0)
ROWS = [[1.0, 2.0], [3.0], [4.0, 5.0, 6.0], [7.0], [1.0], [2.0, 2.0], [3.0], [4.0]]
Y = np.arange(8, dtype=np.float32).reshape(8, 1)


def kind_of(x: Any) -> str:
    name = type(x).__name__
    if name in ("SparseTensor", "BCOO"):
        return "sparse"
    return "ragged" if name == "RaggedTensor" else "dense"


def as_dense(x: Any) -> np.ndarray:
    """``x`` as NumPy, ragged rows and narrower batches padded with zeros to WIDTH."""
    kind = kind_of(x)
    if kind == "sparse":
        x = tf.sparse.to_dense(x) if BACKEND == "tensorflow" else x.todense()
    elif kind == "ragged":
        x = x.to_tensor()
    array = np.asarray(keras.ops.convert_to_numpy(x))
    return np.pad(array, [(0, 0), (0, WIDTH - array.shape[1])])


LOG: list[tuple[str, list[list[float]]]] = []  # a module list: a layer would track a copy


class Record(keras.layers.Layer):
    """Logs what it receives (``run_eagerly``, so values are concrete) and passes it on dense."""

    def call(self, x: Any) -> Any:
        if not isinstance(x, keras.KerasTensor) and not type(x).__name__.endswith("Tracer"):
            LOG.append((kind_of(x), as_dense(x).tolist()))
        kind = kind_of(x)
        if kind == "sparse":
            x = tf.sparse.to_dense(x) if BACKEND == "tensorflow" else x.todense()
        elif kind == "ragged":
            x = x.to_tensor(shape=[None, WIDTH])
        x = keras.ops.convert_to_tensor(x)
        if x.shape[1] is not None and x.shape[1] < WIDTH:
            x = keras.ops.pad(x, [[0, 0], [0, WIDTH - x.shape[1]]])
        return keras.ops.cast(x, "float32")

    def compute_output_shape(self, shape: Any) -> tuple[Any, int]:
        return (shape[0], WIDTH)


def run(make: Callable[[], feeders.Feeder], ragged: bool) -> dict[str, Any]:
    log = LOG
    log.clear()
    # The input flags each backend supports: sparse on TF and JAX, ragged on TF.
    flags = {
        "ragged": ragged and BACKEND == "tensorflow",
        "sparse": not ragged and BACKEND in ("tensorflow", "jax"),
    }
    inputs = keras.Input((None,) if ragged else (WIDTH,), **flags)
    model = keras.Model(inputs, keras.layers.Dense(1)(Record()(inputs)))
    model.compile("sgd", "mse", run_eagerly=True)
    feeder = make()
    expected = [as_dense(x).tolist() for x, _, _ in feeder.epoch(0, shuffle=False)]
    model.fit(feeder, epochs=1, shuffle=False, verbose=0)
    fit = log[-len(expected) :]  # torch builds the model on a batch of zeros first
    log.clear()
    predictions = model.predict(feeder, verbose=0)
    return {
        "expected": expected,
        "fit": fit,
        "predict": list(log),
        "predictions": np.asarray(predictions).shape[0],
    }


def tf_data_sparse() -> feeders.Feeder:
    x = tf.sparse.from_dense(DENSE)
    return feeders.adapt(tf.data.Dataset.from_tensor_slices((x, Y)).batch(4))


def tf_data_ragged() -> feeders.Feeder:
    x = tf.ragged.constant(ROWS)
    return feeders.adapt(tf.data.Dataset.from_tensor_slices((x, Y)).batch(4))


def generator(make_x: Callable[[slice], Any]) -> Callable[[], feeders.Feeder]:
    def batches() -> Iterator[tuple[Any, np.ndarray]]:
        for i in (0, 4):
            yield make_x(slice(i, i + 4)), Y[i : i + 4]

    return lambda: feeders.adapt(batches, num_batches=2)


CASES: dict[str, tuple[Callable[[], feeders.Feeder], bool]] = {
    "tf.data-sparse": (tf_data_sparse, False),
    "tf.data-ragged": (tf_data_ragged, True),
    "generator-tf-sparse": (generator(lambda s: tf.sparse.from_dense(DENSE[s])), False),
    "generator-scipy": (generator(lambda s: sparse.csr_matrix(DENSE[s])), False),
    "generator-ragged": (generator(lambda s: tf.ragged.constant(ROWS[s])), True),
    "arrays-tf-sparse": (
        lambda: feeders.adapt(tf.sparse.from_dense(DENSE), Y, batch_size=4, seed=0),
        False,
    ),
    "arrays-ragged": (
        lambda: feeders.adapt(tf.ragged.constant(ROWS), Y, batch_size=4, seed=0),
        True,
    ),
}

if __name__ == "__main__":
    chosen = sys.argv[1:] or list(CASES)
    print(
        json.dumps(
            {
                "backend": BACKEND,
                "cases": {name: run(*CASES[name]) for name in chosen},
            }
        )
    )
