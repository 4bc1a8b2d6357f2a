"""Image files → 32x200x200x3 float batches: every decoder and the usual pipelines, side by side.

Rows (images/s, interleaved repeats, JSON lines on stdout, a summary table on stderr):
  - `ImageFileSequence[<decoder>]` for each importable decoder, in-process, one thread (the
    "tf" decoder also uses TensorFlow's intra-op threads): the per-core decode rate;
  - `tf.data hand-written`: from_tensor_slices → map(read_file, decode_jpeg, resize) → batch
    → prefetch, AUTOTUNE (what a tutorial writes), and the same with `.cache()` after the
    map (epochs after the first read decoded float32 images from RAM);
  - `ImageFileSequence.to_tf_dataset`: the pure-TF `tf_decode_fn` (header size check,
    DCT-scaled JPEG decode, bilinear resize) in a tf.data map;
  - the Keras guide's `CIFAR10Sequence` (skimage `resize(imread(f))`, float64 batches) in
    Keras' own `PyDataset(workers=2, use_multiprocessing=True)` pool and through
    `feeders.adapt(seq, workers=2, use_multiprocessing=True)`;
  - one PIL function (draft decode + bilinear resize, `pil_image`) in feeders' 2- and
    1-process pools (`PilSequence`) and in `torch DataLoader(num_workers=2)` (`PilFiles`,
    `persistent_workers=True`; skipped with a note when torch is not importable);
  - `ImageFileSequence` through `feeders.adapt(..., workers=2, use_multiprocessing=True)`:
    "pil", "simplejpeg" (what "auto" is with a plain install) and "auto" (with the
    `opencv` extra, "opencv") as float32 and as uint8 batches (`transport_gb_per_s`: bytes through the
    pool's shared memory per second), uint8 with `rescale=1/255` (float32 delivered, the
    NumPy conversion after the pool), and "auto" in Keras' `PyDataset` pool;
  - rows added through `register_loader`;
  - ratio rows with the targets of issues 4 and 13, CPU-per-image ratio rows, and
    `quality:` rows: mean |difference| from the skimage reference over 100 files, per
    decoder and for the hand-written tf.data map (skipped with `--only`).

Steady state: every pipeline is built once and serves one epoch per call, as `fit` iterates
it (feeders' and torch's worker processes persist across epochs; Keras' PyDataset pool
restarts each epoch, which is how Keras runs; tf.data datasets are re-iterated). One untimed
warm-up epoch per row comes first, so process start-up and tracing are not timed (spawned
feeders workers import TensorFlow, via Keras, to unpickle the PyDataset classes). Every
loader must yield each image exactly once per epoch; the harness checks the count.

Each row also records `cpu_ms_per_image`: CPU time of this process and its workers per
image. On a shared machine images/s moves with the neighbours' load (and favours loaders
with many threads, which get more of the contended cores); CPU per image does not.

Measured on the shared 2-core VM (2026-12-01, 2,000 files, median of 5, load average 1.3-3):
CPU ms per image, tf.data hand-written 0.51-0.52; ImageFileSequence[opencv] in-process 0.40
(float32), through feeders' 2-process pool 0.41-0.42 as uint8, 0.45-0.47 as uint8 with
`rescale=1/255` (the NumPy cast in the parent) and 0.49-0.51 as float32; [simplejpeg] 0.98-1.0
through the pool (PIL's resize); to_tf_dataset 0.58. Under load images/s swing 2x between
epochs and favour tf.data's many threads; compare CPU per image. See the README.

Run: `python -m feeders.benchmarks.bench_images [--quick]` (`--quick`: 96 files, 1 repeat).
Files are written once (rich progress bar) under --data-dir and reused by later runs.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
from PIL import Image
from skimage.io import imread
from skimage.transform import resize

from feeders.benchmarks._timing import Measurement, emit, environment, interleaved, ratio_row

SUITE = "images"
IMAGE_SIZE = (200, 200)
BATCH = 32
WORKERS = 2

MakeLoader = Callable[[list[str], np.ndarray], Iterable[Any]]
"""`make_loader(files, labels)` → an iterable over one epoch of `(x, y)` batches.

Called once per epoch (the warm-up one included). A loader that keeps workers across epochs
builds them on its first call and may expose `close()`, which `main` calls at the end.
"""

# ---- HOOK: extra rows ---------------------------------------------------------------------------
EXTRA_LOADERS: dict[str, tuple[MakeLoader, dict[str, Any]]] = {}


def register_loader(name: str, make_loader: MakeLoader, **config: Any) -> None:
    """Add a row: `make_loader(files, labels)` is called once per epoch (see `MakeLoader`).

    Example:
        register_loader("my loader", lambda f, y: my_pipeline(f, y).one_epoch(), workers=2)
    """
    EXTRA_LOADERS[name] = (make_loader, config)


# ---- the Keras guide's Sequence, verbatim but for the base class name --------------------------


class CIFAR10Sequence(keras.utils.PyDataset):  # type: ignore[misc]  # keras ships no types
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
        return np.array([resize(imread(file_name), (200, 200)) for file_name in batch_x]), np.array(  # type: ignore[no-untyped-call]
            batch_y
        )


# ---- one PIL decode function, run by feeders' pool and by torch's DataLoader ---------------------


def pil_image(path: str) -> np.ndarray:
    """float32 (200, 200, 3) in [0, 1]: JPEG draft (reduced DCT scale), RGB, bilinear resize."""
    with Image.open(path) as image:
        image.draft("RGB", IMAGE_SIZE[::-1])
        rgb = image.convert("RGB").resize(IMAGE_SIZE[::-1], Image.Resampling.BILINEAR)
    return np.asarray(rgb, np.float32) / np.float32(255)


class PilSequence:
    """Whole batches of `pil_image`, stacked as torch's default collate does (no Keras base)."""

    def __init__(self, files: list[str], labels: np.ndarray) -> None:
        self.files, self.labels = files, labels

    def __len__(self) -> int:
        return math.ceil(len(self.files) / BATCH)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        files = self.files[index * BATCH : (index + 1) * BATCH]
        x = np.stack([pil_image(f) for f in files])
        return x, self.labels[index * BATCH : (index + 1) * BATCH]


class PilFiles:
    """The same decode as a map-style per-sample dataset, for `torch.utils.data.DataLoader`."""

    def __init__(self, files: list[str], labels: np.ndarray) -> None:
        self.files, self.labels = files, labels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        import torch

        return torch.from_numpy(pil_image(self.files[i])), int(self.labels[i])


# ---- loaders -----------------------------------------------------------------------------------


class Persistent:
    """A loader built on the first call and reused: each call serves its next epoch.

    `build(files, labels)` returns the long-lived object; `epoch(obj)` one epoch's
    iterable; `close(obj)` releases it (worker processes, shared memory).
    """

    def __init__(
        self,
        build: Callable[[list[str], np.ndarray], Any],
        epoch: Callable[[Any], Iterable[Any]],
        close: Callable[[Any], None] = lambda obj: None,
    ) -> None:
        self._build, self._epoch, self._close = build, epoch, close
        self._obj: Any = None

    def __call__(self, files: list[str], labels: np.ndarray) -> Iterable[Any]:
        if self._obj is None:
            self._obj = self._build(files, labels)
        return self._epoch(self._obj)

    def close(self) -> None:
        obj, self._obj = self._obj, None
        if obj is not None:
            self._close(obj)


def sequence_in_process(decoder: str) -> MakeLoader:
    from feeders.images import ImageFileSequence

    def make(files: list[str], labels: np.ndarray) -> Iterable[Any]:
        seq = ImageFileSequence(
            files, labels, batch_size=BATCH, image_size=IMAGE_SIZE, decoder=decoder
        )
        return (seq[i] for i in range(len(seq)))

    return make


def feeders_pool(
    make_sequence: Callable[[list[str], np.ndarray], Any], **options: Any
) -> Persistent:
    """`feeders.adapt(sequence, **options)`, one pass (epoch) per call, as `fit` iterates it."""
    import feeders

    return Persistent(
        lambda f, y: feeders.adapt(make_sequence(f, y), shuffle=False, **options),
        lambda feeder: feeder.get_numpy_iterator(),
        lambda feeder: feeder.close(),
    )


def keras_workers(make_sequence: Callable[[list[str], np.ndarray], Any]) -> Persistent:
    """Keras' own PyDataset adapter (what `fit` uses), workers included, one epoch per call."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    def epoch(adapter: Any) -> Iterator[Any]:
        adapter.on_epoch_begin()
        try:
            yield from adapter.get_numpy_iterator()
        finally:
            adapter.on_epoch_end()

    return Persistent(lambda f, y: PyDatasetAdapter(make_sequence(f, y), shuffle=False), epoch)


def tf_data_handwritten(files: list[str], labels: np.ndarray, cache: bool = False) -> Any:
    """What a tutorial writes; `cache=True` adds `.cache()` after the map (decoded, in RAM)."""
    import tensorflow as tf

    def load(path: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        return tf.image.resize(image, IMAGE_SIZE) / 255.0, label

    dataset = tf.data.Dataset.from_tensor_slices((files, labels))
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    return dataset.batch(BATCH).prefetch(tf.data.AUTOTUNE)


def sequence_to_tf_dataset(files: list[str], labels: np.ndarray) -> Any:
    from feeders.images import ImageFileSequence

    seq = ImageFileSequence(files, labels, batch_size=BATCH, image_size=IMAGE_SIZE, decoder="tf")
    return seq.to_tf_dataset()


def torch_loader() -> Persistent | None:
    try:
        from torch.utils.data import DataLoader
    except ImportError:
        return None
    return Persistent(
        lambda f, y: DataLoader(
            PilFiles(f, y),  # type: ignore[arg-type]  # a map-style dataset, as torch reads it
            batch_size=BATCH,
            num_workers=WORKERS,
            persistent_workers=True,
        ),
        lambda loader: loader,
    )


def image_file_sequence(decoder: str, **kwargs: Any) -> Callable[[list[str], np.ndarray], Any]:
    from feeders.images import ImageFileSequence

    return lambda f, y: ImageFileSequence(
        f, y, batch_size=BATCH, image_size=IMAGE_SIZE, decoder=decoder, **kwargs
    )


GUIDE = "skimage (guide CIFAR10Sequence)"
MP = f"workers={WORKERS}, mp"


THREADS = f"workers={WORKERS}, threads"


def pool_row(decoder: str, dtype: str, kind: str = MP) -> str:
    suffix = "" if dtype == "float32" else f", {dtype}"
    return f"feeders pool({kind}) + ImageFileSequence[{decoder}{suffix}]"


def image_bytes(dtype: str) -> int:
    """Bytes per image in a batch: what the pool copies into shared memory and out again."""
    return IMAGE_SIZE[0] * IMAGE_SIZE[1] * 3 * np.dtype(dtype).itemsize


def loaders(
    only: set[str] | None,
) -> tuple[dict[str, tuple[MakeLoader, dict[str, Any]]], list[dict[str, Any]]]:
    """The rows to time, and JSON notes for rows that cannot run here."""
    from feeders.images import DECODERS, decode

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
        Persistent(tf_data_handwritten, lambda dataset: dataset),
        {"workers": "AUTOTUNE", "decode": "decode_jpeg + resize(bilinear, antialias=False)"},
    )
    rows["tf.data hand-written + cache()"] = (
        Persistent(functools.partial(tf_data_handwritten, cache=True), lambda dataset: dataset),
        {
            "workers": "AUTOTUNE",
            "cache": "decoded float32 in RAM after the warm-up epoch",
            "cache_bytes_per_image": image_bytes("float32"),
        },
    )
    rows["ImageFileSequence.to_tf_dataset"] = (
        Persistent(sequence_to_tf_dataset, lambda dataset: dataset),
        {"workers": "AUTOTUNE", "decode": "tf_decode_fn (antialias=True, header check)"},
    )
    pool = {"workers": WORKERS, "use_multiprocessing": True}
    rows[f"keras PyDataset({MP}) + {GUIDE}"] = (
        keras_workers(lambda f, y: CIFAR10Sequence(np.array(f), y, BATCH, **pool)),
        {**pool, "decode": "resize(imread(f), (200, 200)), float64", "pool": "restarts per epoch"},
    )
    rows[f"feeders pool({MP}) + {GUIDE}"] = (
        feeders_pool(lambda f, y: CIFAR10Sequence(np.array(f), y, BATCH), **pool),
        {**pool, "decode": "resize(imread(f), (200, 200)), float64", "pool": "persistent"},
    )
    for workers in (WORKERS, 1):
        rows[f"feeders pool(workers={workers}, mp) + PIL"] = (
            feeders_pool(PilSequence, workers=workers, use_multiprocessing=True),
            {"workers": workers, "use_multiprocessing": True, "decode": "pil_image"},
        )
    torch_make = torch_loader()
    torch_row = f"torch DataLoader(num_workers={WORKERS}) + PIL"
    if torch_make is None:
        notes.append({"suite": SUITE, "name": torch_row, "skipped": "torch is not importable"})
    else:
        rows[torch_row] = (
            torch_make,
            {"workers": WORKERS, "persistent_workers": True, "decode": "pil_image"},
        )
    auto = decode.resolve_decoder("auto")
    plain = [("pil", "float32"), ("simplejpeg", "float32")]
    for decoder, dtype in dict.fromkeys([*plain, (auto, "float32"), (auto, "uint8")]):
        rows[pool_row(decoder, dtype)] = (
            feeders_pool(image_file_sequence(decoder, dtype=dtype), **pool),
            {**pool, "decoder": decoder, "dtype": dtype, "bytes_per_image": image_bytes(dtype)},
        )
    # simplejpeg and OpenCV release the GIL while they decode and resize, so threads decode
    # in parallel too, without the pool's copies and pipes (the README's recommendation).
    threads = {"workers": WORKERS, "use_multiprocessing": False}
    rows[pool_row(auto, "uint8", THREADS)] = (
        feeders_pool(image_file_sequence(auto, dtype="uint8"), **threads),
        {**threads, "decoder": auto, "dtype": "uint8", "bytes_per_image": image_bytes("uint8")},
    )
    rows[pool_row(auto, "uint8") + " rescale=1/255"] = (
        feeders_pool(image_file_sequence(auto, dtype="uint8", rescale=1 / 255), **pool),
        {
            **pool,
            "decoder": auto,
            "dtype": "uint8",
            "delivered": "float32 x / 255, converted in the parent after the pool",
            "bytes_per_image": image_bytes("uint8"),
        },
    )
    rows[f"keras PyDataset({MP}) + ImageFileSequence[{auto}]"] = (
        keras_workers(image_file_sequence(auto, **pool)),
        {**pool, "decoder": auto, "pool": "restarts per epoch"},
    )
    rows.update(EXTRA_LOADERS)
    if only:
        rows = {k: v for k, v in rows.items() if any(o in k for o in only)}
    return rows, notes


# (ratio name, numerator row, denominator row, target): issue 4's pool targets, issue 13's
# image targets. The "opencv" rows are the README's recommendation (the `opencv` extra);
# "simplejpeg" is what "auto" picks with only a plain install's packages.
HAND = "tf.data hand-written"
RATIOS = [
    (
        "feeders pool / keras PyDataset, guide's skimage Sequence",
        f"feeders pool({MP}) + {GUIDE}",
        f"keras PyDataset({MP}) + {GUIDE}",
        ">= 1.4",
    ),
    (
        "feeders pool 2 / 1 workers, PIL",
        f"feeders pool(workers={WORKERS}, mp) + PIL",
        "feeders pool(workers=1, mp) + PIL",
        ">= 1.8",
    ),
    (
        "feeders pool / torch DataLoader, PIL",
        f"feeders pool(workers={WORKERS}, mp) + PIL",
        f"torch DataLoader(num_workers={WORKERS}) + PIL",
        ">= 1.1",
    ),
    ("ImageFileSequence[opencv] pool / tf.data", pool_row("opencv", "float32"), HAND, ">= 1.3"),
    (
        "ImageFileSequence[opencv, uint8] pool / tf.data",
        pool_row("opencv", "uint8"),
        HAND,
        ">= 1.3",
    ),
    (
        "ImageFileSequence[opencv, uint8] threads / tf.data",
        pool_row("opencv", "uint8", THREADS),
        HAND,
        ">= 1.3",
    ),
    (
        "ImageFileSequence[simplejpeg] pool / tf.data (plain install's auto)",
        pool_row("simplejpeg", "float32"),
        HAND,
        ">= 1.0",
    ),
    ("ImageFileSequence[pil] pool / tf.data", pool_row("pil", "float32"), HAND, "report"),
    (
        "ImageFileSequence.to_tf_dataset / tf.data",
        "ImageFileSequence.to_tf_dataset",
        HAND,
        ">= 1.0",
    ),
    (
        "ImageFileSequence[opencv] pool, uint8 + rescale / float32",
        pool_row("opencv", "uint8") + " rescale=1/255",
        pool_row("opencv", "float32"),
        "report",
    ),
    (
        "ImageFileSequence[opencv] pool, uint8 / float32",
        pool_row("opencv", "uint8"),
        pool_row("opencv", "float32"),
        "report",
    ),
]
# (ratio name, numerator row, denominator row, target) of CPU ms per image: lower is better.
CPU_RATIOS = [
    (
        "cpu per image, ImageFileSequence[opencv] pool / tf.data",
        pool_row("opencv", "float32"),
        HAND,
        "<= 0.7",
    ),
    (
        "cpu per image, ImageFileSequence[opencv, uint8] pool / tf.data",
        pool_row("opencv", "uint8"),
        HAND,
        "<= 0.7",
    ),
    (
        "cpu per image, ImageFileSequence[opencv, uint8] threads / tf.data",
        pool_row("opencv", "uint8", THREADS),
        HAND,
        "<= 0.7",
    ),
]


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_name = {row["name"]: row for row in rows}
    out = [
        ratio_row(SUITE, name, by_name[num], by_name[den], target)
        for name, num, den, target in RATIOS
        if num in by_name and den in by_name
    ]
    for name, num, den, target in CPU_RATIOS:
        if num in by_name and den in by_name:
            cpu = [by_name[r]["config"]["cpu_ms_per_image"] for r in (num, den)]
            row = ratio_row(SUITE, name, by_name[num], by_name[den], target)
            row.update(dict.fromkeys(("value", "min", "median", "max"), cpu[0] / cpu[1]))
            out.append(row)
    return out


def transport(config: dict[str, Any], images: int, seconds: list[float]) -> dict[str, float]:
    """GB/s through the pool's shared memory (median epoch), for rows that say their bytes."""
    if "bytes_per_image" not in config:
        return {}
    rate = statistics.median(images / s for s in seconds)
    return {"transport_gb_per_s": round(rate * config["bytes_per_image"] / 1e9, 3)}


QUALITY_FILES = 100


def quality_rows(files: list[str]) -> list[dict[str, Any]]:
    """Mean |difference| from the guide's skimage `resize(imread(f))`, per decoder and tf.data.

    Over the first `QUALITY_FILES` files; the figures each decoder's docstring states.
    """
    import tensorflow as tf

    from feeders.images import DECODERS, decode

    @tf.function  # type: ignore[untyped-decorator]
    def hand_written(path: tf.Tensor) -> tf.Tensor:  # the tf.data row's map, minus the label
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        return tf.image.resize(image, IMAGE_SIZE) / 255.0

    decoders: dict[str, Callable[[str], np.ndarray]] = {
        HAND: lambda f: hand_written(tf.constant(f)).numpy()
    }
    for name in DECODERS:
        if name != "skimage" and decode._available(name):
            decoders[f"ImageFileSequence[{name}]"] = functools.partial(
                DECODERS[name], image_size=IMAGE_SIZE
            )
    reference = [decode.decode_skimage(f, IMAGE_SIZE) for f in files]
    rows = []
    for name, fn in decoders.items():
        diffs = [float(np.abs(fn(f) - ref).mean()) for f, ref in zip(files, reference, strict=True)]
        rows.append(
            {
                "suite": SUITE,
                "name": f"quality: {name}",
                "value": statistics.fmean(diffs),
                "unit": "mean |diff| vs skimage",
                "min": min(diffs),
                "median": statistics.median(diffs),
                "max": max(diffs),
                "repeats": len(diffs),
                "config": {
                    "files": len(files),
                    "image_size": list(IMAGE_SIZE),
                    "target": "<= 0.01",
                },
                **environment(),
            }
        )
    return rows


def cpu_ms(seconds: list[float], images: int) -> float:
    """Median CPU milliseconds per image over the timed epochs."""
    return round(1e3 * statistics.median(seconds) / images, 3)


def summary(rows: list[dict[str, Any]]) -> str:
    """A plain-text table: median (min-max) per row, then each ratio with its target."""
    width = max((len(row["name"]) for row in rows), default=0)
    lines = []
    for row in rows:
        if row.get("unit") == "ratio":
            lines.append(
                f"{row['name']:<{width}}  {row['value']:7.2f}x   target {row['config']['target']}"
            )
        elif row.get("unit", "").startswith("mean |diff|"):
            lines.append(
                f"{row['name']:<{width}}  {row['value']:.4f} mean |diff| (worst {row['max']:.4f})"
            )
        elif "skipped" in row:
            lines.append(f"{row['name']:<{width}}  skipped: {row['skipped']}")
        else:
            lines.append(
                f"{row['name']:<{width}}  {row['median']:7.0f} images/s"
                f"  ({row['min']:.0f}-{row['max']:.0f}, {row['repeats']} epochs)"
                f"  cpu {row['config']['cpu_ms_per_image']:.2f} ms/image"
            )
    return "\n".join(lines)


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


def cpu_seconds() -> float:
    """CPU time of this process and all its children (live, and exited and reaped) so far.

    Why: on a shared machine, images/s moves with the neighbours' load; CPU per image does
    not, and shows where a loader spends its cores (worker processes included).
    """
    times = os.times()
    total = times.user + times.system + times.children_user + times.children_system
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{os.getpid()}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in children:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile: counted in children_* once reaped
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def drain(make: MakeLoader, files: list[str], labels: np.ndarray, cpu: list[float]) -> None:
    """One epoch of `make`; appends the CPU seconds it took (all processes) to `cpu`."""
    seen = 0
    start = cpu_seconds()
    for x, _ in make(files, labels):
        seen += int(x.shape[0])
    cpu.append(cpu_seconds() - start)
    if seen != len(files):
        raise RuntimeError(f"a loader yielded {seen} images for {len(files)} files")


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="96 files, 1 repeat")
    parser.add_argument("--files", type=int, default=None, help="number of JPEGs (default 2000)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed epochs per row (default 3)"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="where to write/reuse the JPEGs"
    )
    parser.add_argument("--only", default="", help="comma-separated substrings of row names")
    args = parser.parse_args(argv)
    count = args.files or (96 if args.quick else 2000)
    repeats = args.repeats or (1 if args.quick else 3)

    files = image_files(count, args.data_dir)
    labels = np.arange(len(files)) % 10
    rows, notes = loaders({o for o in args.only.split(",") if o} or None)
    print(
        f"timing {len(rows)} loaders x {repeats} epochs of {len(files)} files "
        "(after one warm-up epoch each)",
        file=sys.stderr,
    )
    cpu: dict[str, list[float]] = {name: [] for name in rows}
    runs: dict[str, Callable[[], None]] = {
        name: functools.partial(drain, make, files, labels, cpu[name])
        for name, (make, _) in rows.items()
    }
    try:
        seconds = interleaved(runs, repeats, warmup=1)
    finally:
        for make, _ in rows.values():
            close = getattr(make, "close", None)
            if close is not None:
                close()
    config = {
        "files": len(files),
        "batch_size": BATCH,
        "image_size": list(IMAGE_SIZE),
        "timed": "whole epochs after 1 warm-up epoch per row, rows interleaved",
    }
    out = emit(
        Measurement(
            name,
            "images/s",
            len(files),
            {
                **config,
                **rows[name][1],
                "cpu_ms_per_image": cpu_ms(cpu[name][1:], len(files)),
                **transport(rows[name][1], len(files), secs),
            },
            secs,
        ).row(SUITE)
        for name, secs in seconds.items()
    )
    out += emit(ratios(out))
    if not args.only:
        out += emit(quality_rows(files[:QUALITY_FILES]))
    out += emit({**note, **environment()} for note in notes)
    print(summary(out), file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
