"""`ImageFileSequence(dtype="uint8", rescale=1 / 255)`: uint8 through the pool, float32 at the model.

Through the user's door: `model.predict` of a model that only averages its input must
return the uint8 pixels times `rescale` (a model given the raw uint8 would return values
up to 255), on TensorFlow in-process with worker processes, and on JAX and PyTorch in a
`python -` subprocess each (Keras picks its backend at import).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import feeders
from feeders.images import ImageFileSequence
from feeders.images.samples import write_photos

ROOT = Path(__file__).resolve().parents[1]
SIZE = (24, 32)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return [str(p) for p in write_photos(tmp_path_factory.mktemp("rescale"), 10, seed=3)]


def sequence(files: list[str], **kwargs: object) -> ImageFileSequence:
    options: dict[str, object] = {"batch_size": 4, "image_size": SIZE, "decoder": "pil"}
    options.update(kwargs)
    return ImageFileSequence(files, np.arange(len(files)) % 2, **options)  # type: ignore[arg-type]


def expected_means(files: list[str]) -> np.ndarray:
    """Per-image channel means of the uint8 pixels / 255, in file order."""
    raw = sequence(files, dtype="uint8")
    pixels = np.concatenate([raw[i][0] for i in range(len(raw))])
    return (pixels.astype(np.float32) / 255).mean(axis=(1, 2))


def averaging_model() -> keras.Model:
    model = keras.Sequential([keras.Input((*SIZE, 3)), keras.layers.GlobalAveragePooling2D()])
    model.compile("sgd", "mse")
    return model


def test_predict_and_fit_get_float32_pixels_through_worker_processes(files: list[str]) -> None:
    seq = sequence(files, dtype="uint8", rescale=1 / 255)
    with feeders.adapt(seq, workers=2, use_multiprocessing=True, shuffle=False) as feeder:
        x, _, _ = next(feeder.epoch(0))
        assert x.dtype == np.uint8  # the pool carries uint8
        model = averaging_model()
        np.testing.assert_allclose(
            model.predict(feeder, verbose=0), expected_means(files), atol=1e-6
        )
        dense = keras.Sequential(
            [keras.Input((*SIZE, 3)), keras.layers.Flatten(), keras.layers.Dense(2)]
        )
        dense.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = dense.fit(feeder, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        dataset = feeder.as_dataset()
        assert dataset.element_spec[0].dtype.name == "float32"


def test_numpy_iterator_rescales_and_leaves_labels_alone(files: list[str]) -> None:
    seq = sequence(files, dtype="uint8", rescale=1 / 255)
    with feeders.adapt(seq, shuffle=False) as feeder:
        x, y = next(iter(feeder.get_numpy_iterator()))
    raw_x, raw_y = sequence(files, dtype="uint8")[0]
    assert x.dtype == np.float32 and y.dtype == raw_y.dtype
    np.testing.assert_array_equal(x, raw_x.astype(np.float32) * np.float32(1 / 255))
    np.testing.assert_array_equal(y, raw_y)


def test_to_tf_dataset_gives_the_rescaled_float32(files: list[str]) -> None:
    plain = sequence(files, dtype="uint8", decoder="tf").to_tf_dataset()
    rescaled = sequence(files, dtype="uint8", decoder="tf", rescale=0.5).to_tf_dataset()
    (x8, y8), (x, y) = next(iter(plain)), next(iter(rescaled))
    assert x.dtype.name == "float32"
    np.testing.assert_array_equal(x.numpy(), x8.numpy().astype(np.float32) * 0.5)
    np.testing.assert_array_equal(y.numpy(), y8.numpy())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"rescale": 1 / 255},
            ValueError,
            r"`rescale` converts uint8 batches .* needs dtype='uint8', but got dtype='float32'",
        ),
        (
            {"dtype": "uint8", "rescale": 0},
            ValueError,
            r"`rescale` must be a positive finite number, but got rescale=0.0",
        ),
        (
            {"dtype": "uint8", "rescale": "1/255"},
            TypeError,
            r"`rescale` must be a number such as 1 / 255, or None, but got str",
        ),
    ],
)
def test_bad_rescale_names_the_fix(
    files: list[str], kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        sequence(files, **kwargs)


SCRIPT = """
import json, sys
import numpy as np
import keras
import feeders
from feeders.images import ImageFileSequence

files = json.loads(sys.argv[1])
seq = ImageFileSequence(
    files, np.arange(len(files)) % 2, batch_size=4, image_size=(24, 32), decoder="pil",
    dtype="uint8", rescale=1 / 255,
)
model = keras.Sequential([keras.Input((24, 32, 3)), keras.layers.GlobalAveragePooling2D()])
model.compile("sgd", "mse")
with feeders.adapt(seq, workers=2, shuffle=False) as feeder:
    means = model.predict(feeder, verbose=0)
    dense = keras.Sequential([keras.Input((24, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    dense.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    dense.fit(feeder, epochs=1, verbose=0)
    first = next(iter(feeder.get_torch_dataloader() if keras.backend.backend() == "torch"
                      else feeder.get_jax_iterator()))[0]
print(json.dumps({"backend": keras.backend.backend(), "means": np.asarray(means).tolist(),
                  "dtype": str(first.dtype)}))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_jax_and_torch_get_float32_pixels(files: list[str], backend: str) -> None:
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    run = subprocess.run(
        [sys.executable, "-", json.dumps(files)],
        input=SCRIPT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": backend},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["backend"] == backend and found["dtype"].endswith("float32")
    np.testing.assert_allclose(found["means"], expected_means(files), atol=1e-5)
