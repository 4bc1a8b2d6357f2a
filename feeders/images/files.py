"""`ImageFileSequence`: batches of decoded image files (and their labels) for Keras.

Why a PyDataset: it is what `model.fit` already accepts, with or without Keras' own workers,
and it is cheap to pickle (paths, label arrays and a few ints), so it can be shipped to
worker processes once per epoch. Order is a pure function of (seed, epoch), so every copy
of the sequence, in any process, agrees on which files make batch `i`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import keras
import numpy as np

from feeders.images import _shared, decode
from feeders.images.directory import IMAGE_EXTENSIONS, index_directory
from feeders.sources._checks import check_batch_size
from feeders.structure import Tree, flatten, lists_to_tuples, packer, paths

if TYPE_CHECKING:
    import tensorflow as tf

    from feeders.service_graph import ServiceGraph

logger = logging.getLogger(__name__)


class ImageDecodeError(ValueError):
    """A file that could not be read or decoded; the message names the file and the batch.

    Why a wrapper: each decoder fails with its own type (PIL's `UnidentifiedImageError` or
    `OSError`, TensorFlow's `InvalidArgumentError`, simplejpeg's `ValueError`, a missing
    file's `FileNotFoundError`); one type lets callers catch bad files whatever the decoder.
    The original exception is kept as `__cause__`.
    """


class SkippedFile(NamedTuple):
    """A file dropped from its batch under `on_error="skip"`."""

    path: str
    epoch: int
    batch: int
    error: str


class ImageFileSequence(keras.utils.PyDataset):  # type: ignore[misc]  # keras ships no types
    """Batches `(x, y)` of images decoded from files, resized to `image_size`.

    `x` is `(batch, height, width, 3)`: float32 in [0, 1], or with `dtype="uint8"` the
    pixels as they are, in [0, 255]; `y` holds the labels of the same files (an
    array, or a dict/list of arrays for multi-output models), or is left out when
    `labels=None` (for `predict`). The order of epoch `e` is a permutation seeded by
    `(seed, e)` when `shuffle=True`, the file order otherwise; only `on_epoch_end()` and
    `set_epoch()` change it. Keras 3 calls `on_epoch_end()` once when `fit` starts and then
    after every epoch, so `fit`'s epoch k is served with order k + 1 (still deterministic).

    Args:
        files: image paths, one per sample.
        labels: None, an array-like with one row per file, or a dict/list/tuple of such
            arrays (a list counts as multi-output only when every element is a NumPy array).
        batch_size: samples per batch; the last batch may be smaller.
        image_size: `(height, width)` of every decoded image.
        shuffle: reshuffle every epoch.
        seed: shuffling seed; None draws one now, so pickled copies still agree.
        decoder: one of `feeders.images.decode.DECODERS`, or "auto": the first importable
            of "opencv" (the `opencv` extra), "simplejpeg" (a plain install), "pil".
        dtype: "float32" (default) or "uint8". uint8 batches are 4x fewer bytes through the
            worker pool's shared memory; normalise them where the model runs: with
            `rescale`, or a `keras.layers.Rescaling(1 / 255)` first layer.
        rescale: with dtype="uint8", e.g. `1 / 255`: the model gets float32 `x * rescale`,
            converted after the pool, where the model runs (a cast in the `tf.data` graph,
            on the device for JAX and PyTorch: `feeders.rescaling`). Indexing the sequence
            and `Feeder.epoch()` still give uint8; `to_tf_dataset()` gives float32.
        on_error: "raise" (`ImageDecodeError`) or "skip" (drop the file from its batch, record
            it in `skipped`, log a count at `on_epoch_end`). Skips are recorded in the process
            that decoded the batch. Decompression bombs are always refused.
        max_pixels: refuse images whose header claims more pixels (`ImageTooLargeError`).
        workers, use_multiprocessing, max_queue_size: passed to `keras.utils.PyDataset`.
    """

    class_names: list[str] | None = None

    def __init__(
        self,
        files: Sequence[str | os.PathLike[str]],
        labels: Any = None,
        *,
        batch_size: int = 32,
        image_size: tuple[int, int] = (200, 200),
        shuffle: bool = False,
        seed: int | None = None,
        decoder: str = "auto",
        dtype: str = "float32",
        rescale: float | None = None,
        on_error: Literal["raise", "skip"] = "raise",
        max_pixels: int = _shared.DEFAULT_MAX_PIXELS,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
    ) -> None:
        super().__init__(
            workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size
        )
        self._files = _validate_files(files)
        self._labels = _validate_labels(labels, len(self._files))
        self.batch_size = check_batch_size(batch_size)
        self.image_size = decode.validate_image_size(image_size)
        self.decoder = decode.resolve_decoder(decoder)
        # NOTE [ one dtype decision ]: what the pool carries (dtype) and what the model
        # gets (float32 x * rescale, or dtype itself) are decided here, together.
        self.dtype = decode.validate_dtype(dtype)
        self.rescale = _validate_rescale(rescale, self.dtype)
        if on_error not in ("raise", "skip"):
            raise ValueError(
                f"`on_error` must be 'raise' or 'skip', but got on_error={on_error!r}."
            )
        self.on_error = on_error
        self.max_pixels = _validate_max_pixels(max_pixels)
        self.shuffle = bool(shuffle)
        self.seed = int(np.random.SeedSequence().entropy % 2**63) if seed is None else int(seed)  # type: ignore[operator]
        self.skipped: list[SkippedFile] = []
        self._owner_pid = os.getpid()
        self._epoch = 0
        self._order: np.ndarray | None = None

    @classmethod
    def from_directory(
        cls,
        root: str | os.PathLike[str],
        *,
        batch_size: int,
        image_size: tuple[int, int],
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
        progress: bool | None = None,
        **kwargs: Any,
    ) -> ImageFileSequence:
        """One sub-folder per class: labels are indices into the sorted `class_names`.

        Files are searched recursively and sorted, so the same tree always gives the same
        sequence. `progress=None` shows a progress bar only when stderr is a terminal.
        Other keyword arguments go to the constructor.
        """
        files, labels, class_names = index_directory(root, extensions, progress=progress)
        sequence = cls(files, labels, batch_size=batch_size, image_size=image_size, **kwargs)
        sequence.class_names = class_names
        return sequence

    @property
    def files(self) -> tuple[str, ...]:
        """The file paths, in their given (unshuffled) order."""
        return tuple(self._files)

    @property
    def epoch(self) -> int:
        """The epoch whose order `__getitem__` serves."""
        return self._epoch

    @property
    def order(self) -> np.ndarray:
        """Sample indices of the current epoch, in batch order (read-only)."""
        if self._order is None:
            order = self._order_of(self._epoch)
            order.flags.writeable = False
            self._order = order
        return self._order

    def _order_of(self, epoch: int) -> np.ndarray:
        """Sample indices of epoch `epoch`: a `(seed, epoch)` permutation, or the file order."""
        n = len(self._files)
        return (
            np.random.default_rng([self.seed, epoch]).permutation(n)
            if self.shuffle
            else np.arange(n)
        )

    def __len__(self) -> int:
        return math.ceil(len(self._files) / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Serve epoch `epoch`'s order, e.g. to resume, or in a parallel consumer."""
        if isinstance(epoch, bool) or not isinstance(epoch, int | np.integer) or epoch < 0:
            raise ValueError(f"`epoch` must be a non-negative int, but got epoch={epoch!r}.")
        self._epoch = int(epoch)
        self._order = None

    def on_epoch_end(self) -> None:
        """Log the files skipped this epoch, then move to the next epoch's order."""
        skipped = [s for s in self.skipped if s.epoch == self._epoch]
        if skipped:
            logger.warning(
                "ImageFileSequence skipped %d unreadable file(s) in epoch %d, e.g. %s (%s).",
                len(skipped),
                self._epoch,
                skipped[0].path,
                skipped[0].error,
            )
        self.set_epoch(self._epoch + 1)

    def __getitem__(self, index: int) -> Any:
        index = self._check_index(index)
        selected = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        x = np.empty((len(selected), *self.image_size, 3), self.dtype)
        kept = np.empty(len(selected), np.intp)
        n = 0
        for i in selected:
            if self._decode_into(x[n], self._files[i], index):
                kept[n] = i
                n += 1
        if n == 0:
            raise ImageDecodeError(
                f"Every file of batch {index} (epoch {self._epoch}) failed to decode; see "
                "`skipped`. Fix or remove the files."
            )
        if self._labels is None:
            return x[:n]
        return x[:n], _take(self._labels, kept[:n])

    def _decode_into(self, out: np.ndarray, path: str, index: int) -> bool:
        """Decode one file into `out`; False when it was skipped."""
        try:
            decode.DECODERS[self.decoder](
                path, self.image_size, out=out, max_pixels=self.max_pixels
            )
        except _shared.ImageTooLargeError as err:
            raise _shared.ImageTooLargeError(f"Batch {index}, epoch {self._epoch}: {err}") from err
        except Exception as err:
            if self.on_error == "raise":
                raise ImageDecodeError(
                    f"Cannot decode image file {path!r} (batch {index}, epoch {self._epoch}, "
                    f"decoder {self.decoder!r}): {_summary(err)}. Fix or remove the "
                    "file, or pass on_error='skip' to drop unreadable files from their batch."
                ) from err
            # A worker process's `skipped` never reaches the parent's epoch-end report,
            # so a worker says each skip itself (spawned workers share the parent's stderr).
            level = logging.DEBUG if os.getpid() == self._owner_pid else logging.WARNING
            logger.log(level, "Skipping %s (batch %d, epoch %d): %r", path, index, self._epoch, err)
            self.skipped.append(SkippedFile(path, self._epoch, index, _summary(err)))
            return False
        return True

    def _check_index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise TypeError(f"Batch `index` must be an int, but got {type(index).__name__}.")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"Batch `index` must be in [0, {n}), but got index={index}.")
        return int(index) % n

    def to_tf_dataset(self, *, epoch: int | None = None) -> tf.data.Dataset:
        """This epoch's batches as a `tf.data` pipeline decoding with the pure-TF function.

        Why: the decode then runs in TensorFlow's own thread pool (and can move to tf.data
        service workers), with the same order and labels as `__getitem__`. Only
        `on_error="raise"` is supported, since `tf.data` cannot drop a file yet still refuse
        a decompression bomb.
        """
        import tensorflow as tf

        if self.on_error != "raise":
            raise ValueError(
                "`to_tf_dataset` needs on_error='raise', but got on_error='skip'. Index the "
                "sequence itself to skip unreadable files."
            )
        if epoch is not None:
            self.set_epoch(epoch)
        order = self.order
        paths = [os.fsencode(self._files[i]) for i in order]  # any file name, not only ASCII
        decode_fn, _ = self._tf_decode()
        dataset = tf.data.Dataset.from_tensor_slices(paths)
        dataset = dataset.map(decode_fn, num_parallel_calls=tf.data.AUTOTUNE)
        if self._labels is not None:
            labels = tf.data.Dataset.from_tensor_slices(_take(self._labels, order))
            dataset = tf.data.Dataset.zip(dataset, labels)
        dataset = dataset.batch(self.batch_size)
        if self.rescale is not None:  # one cast per batch, as the feeder's graph does
            scale = tf.constant(self.rescale, tf.float32)

            def rescaled(x: tf.Tensor, *labels: tf.Tensor) -> Any:
                x = tf.cast(x, tf.float32) * scale
                return (x, *labels) if labels else x

            dataset = dataset.map(rescaled, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def _tf_decode(self) -> tuple[Callable[[tf.Tensor], tf.Tensor], tf.TensorSpec]:
        """The pure-TF `path → image` of this sequence and the image's spec.

        The one place the TF forms (`to_tf_dataset`, the service graph) take the size,
        the pixel limit and the dtype from, so they give what `__getitem__` gives.
        """
        import tensorflow as tf

        decode_fn = decode.tf_decode_fn(
            self.image_size, max_pixels=self.max_pixels, dtype=self.dtype
        )
        return decode_fn, tf.TensorSpec((*self.image_size, 3), self.dtype)

    def service_graph(self, epoch: int, mode: str) -> ServiceGraph:
        """Epoch `epoch`'s batches decoded by tf.data service workers with the pure-TF decode.

        (:class:`~feeders.capabilities.Servable`.) The paths and labels travel in the graph
        as constants; a split is one batch of file indices (NOTE [ service order ] in
        :mod:`feeders.service_graph`). Only `on_error="raise"`: a graph cannot drop a file.
        """
        import tensorflow as tf

        from feeders.service_graph import Rows, rows_graph

        if self.on_error != "raise":
            raise ValueError(
                "`ImageFileSequence` through tf.data service needs on_error='raise', but got "
                "on_error='skip': a TF graph cannot drop a file from its batch. Fix or remove "
                "unreadable files, or read this sequence locally."
            )
        paths = tf.constant([os.fsencode(path) for path in self._files])
        decode_fn, image = self._tf_decode()
        labels = self._labels
        leaves = [] if labels is None else [tf.constant(leaf) for leaf in flatten(labels)]

        def fetch(index: Any) -> tuple[Any, ...]:
            x = tf.map_fn(
                decode_fn,
                tf.gather(paths, index),
                fn_output_signature=image,
                parallel_iterations=self.batch_size,
            )
            if labels is None:
                return (x,)
            return x, lists_to_tuples(packer(labels)([tf.gather(leaf, index) for leaf in leaves]))

        n, order = len(self._files), self._order_of(epoch)
        rows = Rows(n, self.batch_size, order if self.shuffle else None, self.shuffle, False, fetch)
        return rows_graph(rows, mode)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_order"] = None  # recomputed from (seed, epoch): keeps pickles small
        state["skipped"] = []  # each process records its own skips
        return state

    def __repr__(self) -> str:
        return (
            f"ImageFileSequence(files={len(self._files)}, batch_size={self.batch_size}, "
            f"image_size={self.image_size}, decoder={self.decoder!r}, dtype={self.dtype!r}, "
            f"rescale={self.rescale!r}, shuffle={self.shuffle}, "
            f"epoch={self._epoch})"
        )


def _summary(err: BaseException) -> str:
    """`Type: last line`, dropping TensorFlow's node traces (`[[{{node ...}}]]`)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip() and "[[" not in ln]
    return f"{type(err).__name__}: {lines[-1] if lines else ''}"


def _validate_files(files: object) -> list[str]:
    if isinstance(files, str | bytes | os.PathLike):
        raise TypeError(
            f"`files` must be a sequence of paths, but got a single path {type(files).__name__}. "
            "Pass a list, or use ImageFileSequence.from_directory(root, ...) for a folder tree."
        )
    if not isinstance(files, Sequence | np.ndarray) or isinstance(files, Mapping):
        raise TypeError(
            f"`files` must be a sequence of paths, but got {type(files).__name__}. Pass a list."
        )
    paths = list(files)
    if not paths:
        raise ValueError("`files` must not be empty, but got len(files)=0. Pass at least one path.")
    for i, path in enumerate(paths):
        if not isinstance(path, str | os.PathLike):
            raise TypeError(
                f"`files` must hold str or os.PathLike paths, but files[{i}] is "
                f"{type(path).__name__}. Convert paths with str() first."
            )
    return [os.fspath(p) for p in paths]


def _validate_labels(labels: Any, n: int) -> Tree | None:
    """Labels as a tree of arrays with `n` rows; a list is a tree only if it holds arrays."""
    if labels is None:
        return None
    if isinstance(labels, Mapping) or (
        isinstance(labels, list | tuple)
        and labels
        and all(isinstance(v, np.ndarray) for v in labels)
    ):
        tree = packer(labels)([np.asarray(v) for v in flatten(labels)])
    else:
        tree = np.asarray(labels)
    for leaf, where in zip(flatten(tree), paths(tree, "labels"), strict=True):
        if leaf.ndim == 0 or len(leaf) != n:
            rows = "a scalar" if leaf.ndim == 0 else f"len({where})={len(leaf)}"
            raise ValueError(
                f"`{where}` must have one row per file, but got len(files)={n} and {rows} "
                f"(shape {leaf.shape}). Pass one label per file, in the order of `files`."
            )
        if leaf.dtype == object:
            raise TypeError(
                f"`{where}` must be numeric, but got dtype=object (shape {leaf.shape}). Convert "
                "labels to ints (e.g. class indices) or fixed-length arrays."
            )
    return tree


def _take(labels: Tree, rows: np.ndarray) -> Tree:
    """The same rows of every label array (one gather per leaf, no per-sample loop)."""
    return packer(labels)([leaf[rows] for leaf in flatten(labels)])


def _validate_rescale(rescale: object, dtype: str) -> float | None:
    if rescale is None:
        return None
    if isinstance(rescale, bool) or not isinstance(rescale, int | float | np.floating):
        raise TypeError(
            f"`rescale` must be a number such as 1 / 255, or None, but got {type(rescale).__name__}."
        )
    value = float(rescale)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"`rescale` must be a positive finite number, but got rescale={value!r}. Pass "
            "rescale=1 / 255 for float32 pixels in [0, 1]."
        )
    if dtype != "uint8":
        raise ValueError(
            f"`rescale` converts uint8 batches after the worker pool, so it needs dtype='uint8', "
            f"but got dtype={dtype!r}. Pass dtype='uint8' with rescale={value!r}, or drop "
            "`rescale` (float32 batches are already in [0, 1])."
        )
    return value


def _validate_max_pixels(max_pixels: object) -> int:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int | np.integer):
        raise TypeError(
            f"`max_pixels` must be a positive int, but got {type(max_pixels).__name__}."
        )
    value = int(max_pixels)
    if value <= 0:
        raise ValueError(f"`max_pixels` must be a positive int, but got max_pixels={value}.")
    pil_limit = _shared.pil_max_pixels()
    if pil_limit is not None and value > pil_limit:
        raise ValueError(
            f"`max_pixels` can be at most PIL.Image.MAX_IMAGE_PIXELS={pil_limit:,}, beyond which "
            f"PIL itself warns about or refuses files, but got max_pixels={value:,}. Raise "
            "PIL.Image.MAX_IMAGE_PIXELS first (in every worker process)."
        )
    return value
