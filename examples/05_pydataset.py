"""The guide's ``CIFAR10Sequence`` (a ``keras.utils.PyDataset``) through feeders, with 2 workers.

Guide section "Using a PyDataset": a dataset of image files read with
``skimage.io.imread`` and resized to 200x200 with ``skimage.transform.resize``,
one batch per ``__getitem__``. First this script writes real JPEG files: crops
of four photos bundled with scikit-image (the label is which photo), using
``feeders.images.samples``. Then ``feeders.adapt(sequence, workers=2)`` fetches
batches in two threads, in order, calling ``on_epoch_end`` once per epoch.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import keras
import numpy as np
from _shared import parse_args
from skimage.io import imread
from skimage.transform import resize

import feeders
from feeders.images import samples

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


class CIFAR10Sequence(keras.utils.PyDataset):
    def __init__(self, x_set, y_set, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y = x_set, y_set
        self.batch_size = batch_size

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, idx):
        low = idx * self.batch_size
        # Cap upper bound at array length; the last batch may be smaller
        # if the total number of items is not a multiple of batch size.
        high = min(low + self.batch_size, len(self.x))
        batch_x = self.x[low:high]
        batch_y = self.y[low:high]

        return np.array([resize(imread(file_name), (200, 200)) for file_name in batch_x]), np.array(
            batch_y
        )


def write_jpegs(directory: Path, per_class: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """``per_class`` random crops (a third to a half of each side) of each photo, as JPEG files."""
    rng = np.random.default_rng(seed)
    filenames, labels = [], []
    for label, name in enumerate(PHOTOS):
        photo = samples.photo(name)
        height, width = photo.shape[:2]
        for i in range(per_class):
            h = int(rng.integers(height // 3, height // 2 + 1))
            w = int(rng.integers(width // 3, width // 2 + 1))
            top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            path = directory / f"{name}_{i:03d}.jpg"
            samples.write_image(path, np.ascontiguousarray(photo[top : top + h, left : left + w]))
            filenames.append(str(path))
            labels.append(label)
    order = rng.permutation(len(filenames))
    return [filenames[i] for i in order], [labels[i] for i in order]


args = parse_args(__doc__, out=dict(default=None, help="folder for the JPEG files (default: temp)"))
per_class = 100 if args.full else 16
with tempfile.TemporaryDirectory() as scratch:
    directory = Path(args.out or scratch)
    directory.mkdir(parents=True, exist_ok=True)
    filenames, labels = write_jpegs(directory, per_class)
    print(f"wrote {len(filenames)} JPEG files ({len(PHOTOS)} classes) to {directory}")

    sequence = CIFAR10Sequence(filenames, labels, batch_size=16)
    feeder = feeders.adapt(sequence, shuffle=True, seed=0, workers=2)
    print(feeder)

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((200, 200, 3)),
            keras.layers.Conv2D(8, 5, strides=4, activation="relu"),
            keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(len(PHOTOS), activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    with feeder:
        history = model.fit(feeder, epochs=5, verbose=0)
    for epoch, (loss, acc) in enumerate(
        zip(history.history["loss"], history.history["accuracy"], strict=True)
    ):
        print(f"epoch {epoch + 1}: loss {loss:.4f}, accuracy {acc:.4f}")
