"""Image decoders by name: path → (height, width, 3), float32 in [0, 1] or uint8.

Why several: the Keras guide's `resize(imread(f), (200, 200))` (the "skimage" decoder) is the
reference for what an image should look like, but it decodes every JPEG at full size and
filters in float64. The others decode JPEGs at a reduced power-of-two DCT scale that is still
at least the target size, then resize: "opencv" (the `opencv` extra; simplejpeg's decode)
with OpenCV's SIMD bilinear, "simplejpeg" (a core dependency, so what "auto" is in a plain
install) and "pil" with PIL's antialiased bilinear. "tf" is the op chain that a `tf.data`
map (and tf.data service workers) run, via `tf_decode_fn`. `fast_decode` has the per-stage
costs.

Mean |difference| from "skimage" over 100 of the benchmark's JPEGs (200-500 px → 200x200):
opencv 0.0061 (0.0036 with `fast=False`), pil 0.0045, simplejpeg 0.0045, tf 0.0054; the
hand-written tf.data pipeline (full-size decode, plain bilinear) 0.0048. Per image, on the
test photos (JPEG RGB/L/CMYK, PNG RGB/L/LA/RGBA/P, GIF, BMP; → 200x200, 96x128, 300x256):
mean ≤ 0.010, 99th percentile ≤ 0.066, max ≤ 0.32 (isolated edge pixels: the bilinear
filters differ from skimage's Gaussian prefilter). tests/test_images.py asserts mean ≤
0.02, p99 ≤ 0.1, max ≤ 0.4.

Every decoder refuses an image whose header claims more than `max_pixels` pixels before
decoding anything (`ImageTooLargeError`, a decompression bomb), whatever its format.
Alpha is dropped (not composited); grayscale is replicated to three channels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from feeders._tf import require_tf
from feeders.images import tf_decode
from feeders.images._shared import (
    DEFAULT_MAX_PIXELS,
    OUTPUT_DTYPES,
    open_pil,
    output,
    pil_resized,
    store_uint8,
    store_unit,
)
from feeders.images.fast_decode import (
    decode_opencv,
    decode_simplejpeg,
    import_cv2,
    import_simplejpeg,
)

if TYPE_CHECKING:
    import tensorflow as tf


class Decoder(Protocol):
    """Decode one file into `out` (or a new float32 array) at (height, width, 3).

    `out` is float32 (values in [0, 1]) or uint8 (values in [0, 255]); a decoder writes the
    dtype it is given, converting once.
    """

    def __call__(
        self,
        path: str,
        image_size: tuple[int, int],
        *,
        out: np.ndarray | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> np.ndarray: ...


def decode_pil(
    path: str,
    image_size: tuple[int, int],
    *,
    out: np.ndarray | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """PIL: JPEG draft mode (reduced DCT scale ≥ target), then a bilinear antialiased resize.

    Mean |difference| from "skimage" 0.0045, ~0.90 CPU ms per image (half of it PIL's
    resize; see `fast_decode` for "simplejpeg", what "auto" is in a plain install, and the
    faster "opencv").
    """
    out = output(out, image_size)
    with open_pil(path, max_pixels) as image:
        return store_uint8(pil_resized(image, image_size), out)


def decode_skimage(
    path: str,
    image_size: tuple[int, int],
    *,
    out: np.ndarray | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """The Keras guide's `resize(imread(path), image_size)`: the reference, and the slowest."""
    from skimage.io import imread
    from skimage.transform import resize

    out = output(out, image_size)
    with open_pil(path, max_pixels) as header:  # imread has no pixel limit of its own
        # imread hands CMYK JPEGs back unconverted; convert those with PIL instead.
        image = np.asarray(header.convert("RGB")) if header.mode == "CMYK" else imread(path)
    if image.ndim == 4:  # imageio returns GIFs as (frames, H, W, C); keep the first frame
        image = image[0]
    if image.ndim == 3:
        image = image[:, :, :1] if image.shape[2] == 2 else image[:, :, :3]
    resized = resize(image, image_size)  # type: ignore[no-untyped-call]  # skimage is untyped
    return store_unit(resized if resized.ndim == 3 else resized[:, :, None], out)


def decode_tf(
    path: str,
    image_size: tuple[int, int],
    *,
    out: np.ndarray | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """TensorFlow ops, eagerly: the same image a `tf.data` map with `tf_decode_fn` produces.

    Not for forked worker processes: TensorFlow is not fork-safe once started. Use
    `ImageFileSequence.to_tf_dataset()` for parallel TF decoding instead.
    """
    out = output(out, image_size)
    contents = tf_decode.read_checked(path, max_pixels)
    decode = tf_decode.decode_contents_fn(image_size, out.dtype.name)
    np.copyto(out, decode(contents).numpy())
    return out


def tf_decode_fn(
    image_size: tuple[int, int],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    dtype: str = "float32",
) -> Callable[[tf.Tensor], tf.Tensor]:
    """A pure-TF `path → image` function for `tf.data` maps (and tf.data service workers).

    Why pure TF: it runs in graph mode, in parallel, on machines without this package's
    Python objects. JPEGs are decoded at a reduced DCT scale (`decode_jpeg(ratio=)`, see
    NOTE [ DCT-scaled decode in TF ]), then resized bilinear: mean |difference| from
    "skimage" 0.0054. A file over `max_pixels` fails the map with InvalidArgumentError
    naming the file; so does a format whose size cannot be read from its header. `dtype`:
    "float32" (in [0, 1]) or "uint8".
    """
    return tf_decode.path_fn(validate_image_size(image_size), max_pixels, validate_dtype(dtype))


def validate_dtype(dtype: object) -> str:
    """`dtype` as "float32" or "uint8" (a NumPy dtype or its name), or raise with the fix."""
    try:
        name = np.dtype(dtype).name  # type: ignore[call-overload]
    except TypeError:
        name = None
    if name not in OUTPUT_DTYPES:
        raise ValueError(
            f"`dtype` must be 'float32' (values in [0, 1]) or 'uint8' (values in [0, 255]), "
            f"but got dtype={dtype!r}. Pass dtype='uint8' to keep batches 4x smaller."
        )
    return str(name)


def validate_image_size(image_size: object) -> tuple[int, int]:
    """Return `image_size` as (height, width) of positive ints, or raise with the fix."""
    if (
        not isinstance(image_size, tuple | list)
        or len(image_size) != 2
        or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in image_size)
    ):
        raise TypeError(
            "`image_size` must be a (height, width) pair of ints, but got "
            f"image_size={image_size!r}. Pass e.g. image_size=(200, 200)."
        )
    height, width = int(image_size[0]), int(image_size[1])
    if height <= 0 or width <= 0:
        raise ValueError(
            f"`image_size` must be positive, but got image_size={(height, width)}. "
            "Pass e.g. image_size=(200, 200)."
        )
    return height, width


# Name → decoder. "auto" takes the first importable of AUTO_ORDER. CPU ms per image, one
# thread, 400 of the benchmark's JPEGs of 200-500 px → 200x200 uint8 (scratch timing of
# each decoder on the 2-core VM, 2026-12-01; feeders/benchmarks/bench_images.py has the
# in-process and pool rows): opencv 0.365, simplejpeg 0.87, pil 0.90, tf ~1.0 (eager, plus
# TF's threads), skimage ~6.7.
DECODERS: dict[str, Decoder] = {
    "pil": decode_pil,
    "skimage": decode_skimage,
    "tf": decode_tf,
    "simplejpeg": decode_simplejpeg,
    "opencv": decode_opencv,
}
AUTO_ORDER: tuple[str, ...] = ("opencv", "simplejpeg", "pil")
# Decoders that need an optional package: name → the import that raises naming the extra.
REQUIRES: dict[str, Callable[[], Any]] = {
    "opencv": lambda: (import_cv2(), import_simplejpeg()),
    "simplejpeg": import_simplejpeg,
    "tf": lambda: require_tf("decoder='tf'"),
}


def _available(name: str) -> bool:
    try:
        REQUIRES.get(name, lambda: None)()
    except ImportError:
        return False
    return True


def resolve_decoder(name: str) -> str:
    """Map a decoder name (or "auto") to a registered, importable decoder name."""
    if name == "auto":
        return next(n for n in AUTO_ORDER if _available(n))
    if name not in DECODERS:
        raise ValueError(
            f"`decoder` must be one of {['auto', *DECODERS]}, but got decoder={name!r}."
        )
    REQUIRES.get(name, lambda: None)()
    return name
