"""Train through every source kind that must work without TensorFlow; print JSON facts.

Run with tests/no_tf_site on PYTHONPATH (TensorFlow then cannot be imported, in
this process or its workers) and KERAS_BACKEND=jax or torch. Prints what
tests/test_no_tensorflow.py checks: the losses per kind, and the ImportError
message of each TensorFlow-only feature.
"""

from __future__ import annotations

import json
import sys

import keras
import numpy as np

import feeders
from feeders.harness.validate import ArraySequence
from feeders.images.samples import write_photos
from feeders.sources.tf_data import from_dataset


def fit(feeder: feeders.Feeder, shape: tuple[int, ...]) -> float:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(3)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(feeder, epochs=2, validation_data=feeder, verbose=0)
    model.predict(feeder, verbose=0)
    return float(history.history["loss"][-1])


def refusal(call) -> str:  # type: ignore[no-untyped-def]
    try:
        call()
    except ImportError as err:
        return str(err)
    return "no error"


def main() -> None:
    image_dir = sys.argv[1]
    rng = np.random.default_rng(0)
    x, y = rng.random((48, 4), np.float32), np.arange(48) % 3
    files = [str(p) for p in write_photos(image_dir, 12, sizes=(20, 30))]

    def batches():  # type: ignore[no-untyped-def]
        for start in range(0, 48, 16):
            yield x[start : start + 16], y[start : start + 16]

    losses = {
        "arrays": fit(feeders.adapt(x, y, batch_size=16, seed=0), (4,)),
        "generator": fit(feeders.adapt(batches, shuffle=False, num_batches=3), (4,)),
        "sequence-processes": fit(
            feeders.adapt(ArraySequence(x, y, 16), seed=0, workers=2, use_multiprocessing=True),
            (4,),
        ),
        "image-files": fit(
            feeders.adapt(
                feeders.ImageFileSequence(
                    files, np.arange(12) % 3, batch_size=4, image_size=(8, 8), decoder="pil"
                ),
                seed=0,
                workers=2,
            ),
            (8, 8, 3),
        ),
    }
    feeder = feeders.adapt(x, y, batch_size=16)
    refusals = {
        "as_dataset": refusal(feeder.as_dataset),
        "distribute": refusal(lambda: feeder.distribute("localhost:5050")),
        "decoder": refusal(lambda: feeders.ImageFileSequence(files, decoder="tf")),
        "tf.data": refusal(lambda: from_dataset(object())),
    }
    imported = sorted({name.split(".")[0] for name in sys.modules if sys.modules[name]})
    json.dump(
        {
            "backend": keras.backend.backend(),
            "losses": losses,
            "refusals": refusals,
            "tensorflow_imported": "tensorflow" in imported,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
