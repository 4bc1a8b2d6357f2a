"""What ``model.fit``/``evaluate``/``predict`` receive from feeders, on the backend in $KERAS_BACKEND.

Run as ``python tests/scripts/backend_batches.py IMAGE_DIR`` (one process per
backend: Keras picks its backend at import). Prints one JSON object: per source
kind, the digest of every batch each step of a run received (train steps of two
epochs with validation_data, then evaluate, then predict), in order, plus the
backend and the tensor type the model saw. tests/test_backends.py compares
them across backends.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterator

import keras
import numpy as np

import feeders
from feeders.harness.validate import ArraySequence, batch_digest
from feeders.structure import BatchSpec

SAMPLES, BATCH = 72, 16


class Recording(keras.Model):
    """Logs a digest of each batch a step gets (``run_eagerly`` so the values are concrete)."""

    log: list[tuple[str, str]]
    seen: set[str]

    def _record(self, step: str, data: object) -> None:
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        self.seen.update(type(leaf).__module__.split(".")[0] for leaf in keras.tree.flatten(x))
        batch = keras.tree.map_structure(numpy, (x, y, sample_weight))
        shapes = [
            f"{leaf.dtype}{list(leaf.shape)}"
            for leaf in keras.tree.flatten(batch)
            if leaf is not None
        ]
        self.log.append((step, batch_digest(batch), " ".join(shapes)))

    # JAX's steps take (state, data), the others (data): the batch is always last.
    def train_step(self, *args):  # type: ignore[no-untyped-def]
        self._record("train", args[-1])
        return super().train_step(*args)

    def test_step(self, *args):  # type: ignore[no-untyped-def]
        self._record("test", args[-1])
        return super().test_step(*args)

    def predict_step(self, *args):  # type: ignore[no-untyped-def]
        x, _, _ = keras.utils.unpack_x_y_sample_weight(args[-1])
        self._record("predict", (x, None, None))
        return super().predict_step(*args)


def numpy(leaf: object) -> object:
    return None if leaf is None else keras.ops.convert_to_numpy(leaf)


def model_for(spec: object) -> Recording:
    keras.utils.set_random_seed(0)
    named = isinstance(spec, dict)
    leaf = spec["features"] if named else spec  # type: ignore[index]
    inputs = keras.Input(leaf.shape[1:], name="features")  # type: ignore[attr-defined]
    hidden = keras.layers.Flatten()(inputs)
    model = Recording({"features": inputs} if named else inputs, keras.layers.Dense(3)(hidden))
    model.log, model.seen = [], set()
    model.compile(
        "sgd",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=["accuracy"],
        run_eagerly=True,
    )
    return model


def arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((SAMPLES, 4), np.float32), np.arange(SAMPLES) % 3


def generator_factory(x: np.ndarray, y: np.ndarray):  # type: ignore[no-untyped-def]
    def batches():  # type: ignore[no-untyped-def]
        for start in range(0, len(x), BATCH):
            yield x[start : start + BATCH], y[start : start + BATCH]

    return batches


class PlugIn:
    """A plug-in source (registered with `feeders.register_source`, inheriting nothing):
    epoch n is the arrays' batches rotated by n, so each epoch differs."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    @property
    def num_batches(self) -> int:
        return -(-len(self.x) // BATCH)

    @property
    def spec(self) -> BatchSpec:
        return BatchSpec.of((self.x[:1], self.y[:1], None))

    def epoch(self, n: int, start: int = 0) -> Iterator[tuple[object, ...]]:
        for b in range(start, self.num_batches):
            rows = slice(((b + n) % self.num_batches) * BATCH, None)
            yield self.x[rows][:BATCH], self.y[rows][:BATCH], None

    def close(self) -> None:
        pass


class Pairs(tuple):  # type: ignore[type-arg]
    """What the plug-in kind accepts: `Pairs((x, y))`."""


feeders.register_source("pairs", lambda s: isinstance(s, Pairs), lambda s, y, **_: PlugIn(*s))


def cases(image_dir: str) -> dict[str, object]:
    x, y = arrays()
    num_batches = -(-SAMPLES // BATCH)
    files = sorted(os.path.join(image_dir, name) for name in os.listdir(image_dir))
    labels = np.arange(len(files)) % 3
    tf_data = {}
    if importlib.util.find_spec("tensorflow"):  # the no-TensorFlow venv runs this script too
        import tensorflow as tf

        batched = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
        tf_data["tf.data"] = lambda: feeders.adapt(batched)
    return {
        **tf_data,
        "plug-in": lambda: feeders.adapt(Pairs((x, y))),
        "arrays": lambda: feeders.adapt(
            x, y, batch_size=BATCH, seed=1, class_weight={0: 1.0, 1: 2.0, 2: 0.5}
        ),
        "arrays-dict-sample-weight": lambda: feeders.adapt(
            {"features": x},
            y,
            sample_weight=np.linspace(0.5, 1.5, SAMPLES),
            batch_size=BATCH,
            seed=1,
        ),
        "generator": lambda: feeders.adapt(
            generator_factory(x, y), shuffle=False, num_batches=num_batches
        ),
        "sequence-w0": lambda: feeders.adapt(ArraySequence(x, y, BATCH), seed=2, workers=0),
        "sequence-threads": lambda: feeders.adapt(ArraySequence(x, y, BATCH), seed=2, workers=2),
        "sequence-processes": lambda: feeders.adapt(
            ArraySequence(x, y, BATCH), seed=2, workers=2, use_multiprocessing=True
        ),
        "image-files": lambda: feeders.adapt(
            feeders.ImageFileSequence(
                files,
                labels,
                batch_size=8,
                image_size=(12, 16),
                shuffle=True,
                seed=3,
                decoder="pil",
            ),
            seed=4,
            workers=2,
            use_multiprocessing=True,
        ),
    }


def run(make) -> dict[str, object]:  # type: ignore[no-untyped-def]
    with make() as feeder, make() as validation:
        model = model_for(feeder.spec.x)
        model.fit(feeder, epochs=2, validation_data=validation, verbose=0)
        model.evaluate(feeder, verbose=0)
        model.predict(feeder, verbose=0)
    return {"log": model.log, "seen": sorted(model.seen)}


def expected(make) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """What :func:`run` must log, from ``Feeder.epoch(n)`` directly: epochs 0, 1 in order.

    Validation, evaluate and predict passes read epoch 0 in natural order and are
    not training epochs (``fit`` trains epochs 0 and 1 whatever they do).
    """
    log: list[tuple[str, str]] = []
    with make() as feeder, make() as validation:
        for n in range(2):
            log += [("train", batch_digest(batch)) for batch in feeder.epoch(n)]
            log += [("test", batch_digest(batch)) for batch in validation.epoch(0, shuffle=False)]
        log += [("test", batch_digest(batch)) for batch in feeder.epoch(0, shuffle=False)]
        in_order = feeder.epoch(0, shuffle=False)
        log += [("predict", batch_digest((x, None, None))) for x, _, _ in in_order]
    return log


def main() -> None:
    only = sys.argv[2:]
    made = {name: make for name, make in cases(sys.argv[1]).items() if name in only or not only}
    found = {name: run(make) for name, make in made.items()}
    if os.environ.get("FEEDERS_EXPECTED") == "True":
        for name, make in made.items():
            found[name]["expected"] = expected(make)
    json.dump({"backend": keras.backend.backend(), "cases": found}, sys.stdout)


if __name__ == "__main__":
    main()
