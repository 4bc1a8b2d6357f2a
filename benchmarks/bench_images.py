"""Image files → 32x200x200x3 float batches: every decoder and the usual pipelines, side by side.

Rows (images/s over one epoch, interleaved repeats, JSON lines on stdout):
  - `ImageFileSequence[<decoder>]` for each decoder, in-process, one thread (the "tf" decoder
    also uses TensorFlow's intra-op threads);
  - `tf.data hand-written`: from_tensor_slices → map(read_file, decode_jpeg, resize) → batch
    → prefetch, AUTOTUNE (what a tutorial writes; `tf.image.resize` without antialias);
  - `ImageFileSequence.to_tf_dataset`: the pure-TF `tf_decode_fn` in a tf.data map (antialias);
  - `keras PyDataset(workers=2, mp) + skimage`: the Keras guide's `CIFAR10Sequence`;
  - `keras PyDataset(workers=2, mp) + ImageFileSequence[auto]`;
  - `torch DataLoader(num_workers=2) + PIL` when torch is importable (never installed here);
  - rows added through `register_loader` (the hook for the feeders worker pool).
Every loader must yield each image exactly once per epoch; the harness checks the count.

Run: `python -m benchmarks.bench_images [--quick]` (`--quick`: 200 files, 1 repeat).
Files are written once (rich progress bar) under --data-dir and reused by later runs.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
from skimage.io import imread
from skimage.transform import resize

from benchmarks._timing import Measurement, emit, environment, interleaved

SUITE = "images"
IMAGE_SIZE = (200, 200)
BATCH = 32

MakeLoader = Callable[[list[str], np.ndarray], Iterable[Any]]
"""`make_loader(files, labels)` → an iterable over one epoch of `(x, y)` batches."""

# ---- HOOK: extra rows (the lead adds the feeders worker-pool rows here) ----------------------
EXTRA_LOADERS: dict[str, tuple[MakeLoader, dict[str, Any]]] = {}


def register_loader(name: str, make_loader: MakeLoader, **config: Any) -> None:
    """Add a row: `make_loader(files, labels)` is called once per timed epoch.

    Example, once the pool exists:
        register_loader("feeders pool(2) + ImageFileSequence[auto]",
                        lambda f, y: feeders.adapt(ImageFileSequence(f, y, ...), workers=2).epoch(0),
                        workers=2)
    """
    EXTRA_LOADERS[name] = (make_loader, config)


# ---- the Keras guide's Sequence, verbatim but for the base class name --------------------------


class CIFAR10Sequence(keras.utils.PyDataset):
    def __init__(self, x_set: Any, y_set: Any, batch_size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.x, self.y = x_set, y_set
        self.batch_size = batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        low = idx * self.batch_size
        high = min(low + self.batch_size, len(self.x))
        batch_x = self.x[low:high]
        batch_y = self.y[low:high]
        return np.array([resize(imread(file_name), (200, 200)) for file_name in batch_x]), np.array(
            batch_y
        )


# ---- loaders -----------------------------------------------------------------------------------


def sequence_in_process(decoder: str) -> MakeLoader:
    from feeders.images import ImageFileSequence

    def make(files: list[str], labels: np.ndarray) -> Iterable[Any]:
        seq = ImageFileSequence(
            files, labels, batch_size=BATCH, image_size=IMAGE_SIZE, decoder=decoder
        )
        return (seq[i] for i in range(len(seq)))

    return make


def keras_workers(make_sequence: Callable[[list[str], np.ndarray], Any]) -> MakeLoader:
    """One epoch through Keras' own PyDataset adapter (what `fit` uses), workers included."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    def make(files: list[str], labels: np.ndarray) -> Iterable[Any]:
        adapter = PyDatasetAdapter(make_sequence(files, labels), shuffle=False)
        adapter.on_epoch_begin()
        try:
            yield from adapter.get_numpy_iterator()
        finally:
            adapter.on_epoch_end()

    return make


def tf_data_handwritten(files: list[str], labels: np.ndarray) -> Iterable[Any]:
    import tensorflow as tf

    def load(path: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        return tf.image.resize(image, IMAGE_SIZE) / 255.0, label

    dataset = tf.data.Dataset.from_tensor_slices((files, labels))
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(BATCH).prefetch(tf.data.AUTOTUNE)


def sequence_to_tf_dataset(files: list[str], labels: np.ndarray) -> Iterable[Any]:
    from feeders.images import ImageFileSequence

    seq = ImageFileSequence(files, labels, batch_size=BATCH, image_size=IMAGE_SIZE, decoder="tf")
    return seq.to_tf_dataset()


def torch_loader() -> MakeLoader | None:
    try:
        import torch
        from torch.utils.data import DataLoader, Dataset
    except ImportError:
        return None
    from PIL import Image

    class Files(Dataset):  # type: ignore[misc, type-arg]
        def __init__(self, files: list[str], labels: np.ndarray) -> None:
            self.files, self.labels = files, labels

        def __len__(self) -> int:
            return len(self.files)

        def __getitem__(self, i: int) -> tuple[Any, int]:
            with Image.open(self.files[i]) as image:
                rgb = image.convert("RGB").resize(IMAGE_SIZE[::-1], Image.Resampling.BILINEAR)
            return torch.from_numpy(np.asarray(rgb, np.float32) / 255.0), int(self.labels[i])

    def make(files: list[str], labels: np.ndarray) -> Iterable[Any]:
        return DataLoader(Files(files, labels), batch_size=BATCH, num_workers=2)

    return make


def loaders(
    only: set[str] | None,
) -> tuple[dict[str, tuple[MakeLoader, dict[str, Any]]], list[dict[str, Any]]]:
    """The rows to time, and JSON notes for rows that cannot run here."""
    from feeders.images import DECODERS, ImageFileSequence, decode

    rows: dict[str, tuple[MakeLoader, dict[str, Any]]] = {}
    notes: list[dict[str, Any]] = []
    for name in DECODERS:
        try:
            decode.resolve_decoder(name)
        except ImportError as err:
            notes.append(
                {"suite": SUITE, "name": f"ImageFileSequence[{name}]", "skipped": str(err)}
            )
            continue
        rows[f"ImageFileSequence[{name}]"] = (
            sequence_in_process(name),
            {"workers": 0, "decoder": name},
        )
    rows["tf.data hand-written"] = (
        tf_data_handwritten,
        {"workers": "AUTOTUNE", "decode": "decode_jpeg + resize(bilinear, antialias=False)"},
    )
    rows["ImageFileSequence.to_tf_dataset"] = (
        sequence_to_tf_dataset,
        {"workers": "AUTOTUNE", "decode": "tf_decode_fn (antialias=True, header check)"},
    )
    rows["keras PyDataset(workers=2, mp) + skimage (guide)"] = (
        keras_workers(
            lambda f, y: CIFAR10Sequence(np.array(f), y, BATCH, workers=2, use_multiprocessing=True)
        ),
        {"workers": 2, "decode": "resize(imread(f), (200, 200))"},
    )
    auto = decode.resolve_decoder("auto")
    rows[f"keras PyDataset(workers=2, mp) + ImageFileSequence[{auto}]"] = (
        keras_workers(
            lambda f, y: ImageFileSequence(
                f, y, batch_size=BATCH, image_size=IMAGE_SIZE, workers=2, use_multiprocessing=True
            )
        ),
        {"workers": 2, "decoder": auto},
    )
    torch_make = torch_loader()
    if torch_make is None:
        notes.append(
            {
                "suite": SUITE,
                "name": "torch DataLoader(num_workers=2) + PIL",
                "skipped": "torch is not importable",
            }
        )
    else:
        rows["torch DataLoader(num_workers=2) + PIL"] = (
            torch_make,
            {"workers": 2, "decode": "PIL"},
        )
    rows.update(EXTRA_LOADERS)
    if only:
        rows = {k: v for k, v in rows.items() if any(o in k for o in only)}
    return rows, notes


# ---- data and timing ----------------------------------------------------------------------------


def image_files(count: int, data_dir: Path | None) -> list[str]:
    """`count` JPEGs, 200-500 px, written once per directory (a marker records completion)."""
    from feeders.images.samples import write_photos

    root = data_dir or Path(tempfile.gettempdir()) / f"feeders-bench-images-{count}"
    marker = root / ".complete"
    if marker.exists() and marker.read_text() == str(count):
        return sorted(str(p) for p in root.glob("img*.jpg"))
    paths = write_photos(root, count, sizes=(200, 500), formats=("jpeg",), seed=0, progress=True)
    marker.write_text(str(count))
    return [str(p) for p in paths]


def drain(make: MakeLoader, files: list[str], labels: np.ndarray) -> None:
    seen = 0
    for x, _ in make(files, labels):
        seen += int(x.shape[0])
    if seen != len(files):
        raise RuntimeError(f"a loader yielded {seen} images for {len(files)} files")


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 files, 1 repeat")
    parser.add_argument("--files", type=int, default=None, help="number of JPEGs (default 2000)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed epochs per row (default 3)"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="where to write/reuse the JPEGs"
    )
    parser.add_argument("--only", default="", help="comma-separated substrings of row names")
    args = parser.parse_args(argv)
    count = args.files or (200 if args.quick else 2000)
    repeats = args.repeats or (1 if args.quick else 3)

    files = image_files(count, args.data_dir)
    labels = np.arange(len(files)) % 10
    rows, notes = loaders({o for o in args.only.split(",") if o} or None)
    print(f"timing {len(rows)} loaders x {repeats} epochs of {len(files)} files", file=sys.stderr)
    runs: dict[str, Callable[[], None]] = {
        name: functools.partial(drain, make, files, labels) for name, (make, _) in rows.items()
    }
    seconds = interleaved(runs, repeats)
    config = {"files": len(files), "batch_size": BATCH, "image_size": list(IMAGE_SIZE)}
    out = emit(
        Measurement(name, "images/s", len(files), {**config, **rows[name][1]}, secs).row(SUITE)
        for name, secs in seconds.items()
    )
    return out + emit({**note, **environment()} for note in notes)


if __name__ == "__main__":
    main()
