"""Image decoders: path → float32 (height, width, 3) in [0, 1], selected by name.

Why several: the Keras guide's `resize(imread(f), (200, 200))` (the "skimage" decoder) is the
reference for what an image should look like, but it decodes every JPEG at full size and
filters in float64. "pil" and "simplejpeg" decode JPEGs at a reduced DCT scale that is still
at least the target size, then resize with a triangle (bilinear, antialiased) filter, which is
several times faster and stays close to the reference. "tf" is the same op chain that a
`tf.data` map (and tf.data service workers) run, via `tf_decode_fn`.

Tolerance vs "skimage", per image, measured by tests/test_images.py on real photo crops
(JPEG RGB/L/CMYK, PNG RGB/L/LA/RGBA/P, GIF, BMP; 200-500 px → 200x200, 96x128, 300x256):
mean |diff| ≤ 0.010, 99th percentile ≤ 0.066, max ≤ 0.32 (isolated edge pixels: PIL and TF
filter with a triangle where skimage blurs with a Gaussian first; JPEG DCT scaling adds a
little). The test asserts mean ≤ 0.02, p99 ≤ 0.1 and max ≤ 0.4.

Every decoder refuses an image whose header claims more than `max_pixels` pixels before
decoding anything (`ImageTooLargeError`, a decompression bomb), whatever its format.
Alpha is dropped (not composited); grayscale is replicated to three channels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from PIL import Image

from feeders._tf import require_tf
from feeders.images import tf_decode

if TYPE_CHECKING:
    import tensorflow as tf

DEFAULT_MAX_PIXELS: int = int(Image.MAX_IMAGE_PIXELS or 89_478_485)  # PIL's default: 1 GiB / 4 / 3


def pil_max_pixels() -> int | None:
    """PIL's current limit: PIL warns above it (an error under -W error), refuses above 2x."""
    return None if Image.MAX_IMAGE_PIXELS is None else int(Image.MAX_IMAGE_PIXELS)


class ImageTooLargeError(Image.DecompressionBombError, ValueError):
    """An image whose header claims more than `max_pixels` pixels: refused, never decoded.

    Why both bases: code that already catches PIL's `DecompressionBombError` keeps working,
    and the house rule makes a bad value a `ValueError`.
    """


class Decoder(Protocol):
    """Decode one file into `out` (or a new array) as float32 (height, width, 3) in [0, 1]."""

    def __call__(
        self,
        path: str,
        image_size: tuple[int, int],
        *,
        out: np.ndarray | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> np.ndarray: ...


def check_pixels(path: str, height: int, width: int, max_pixels: int) -> None:
    """Raise `ImageTooLargeError` when a header's height x width exceeds `max_pixels`."""
    if height * width > max_pixels:
        raise ImageTooLargeError(
            f"Refusing to decode {path!r}: its header claims {height}x{width} = "
            f"{height * width:,} pixels, more than max_pixels={max_pixels:,} (a possible "
            "decompression bomb). Pass a larger `max_pixels` if the file is trusted, or remove it."
        )


def _output(out: np.ndarray | None, image_size: tuple[int, int]) -> np.ndarray:
    shape = (image_size[0], image_size[1], 3)
    if out is None:
        return np.empty(shape, np.float32)
    if out.shape != shape or out.dtype != np.float32:
        raise ValueError(
            f"`out` must be float32 with shape {shape}, but got shape={out.shape} "
            f"dtype={out.dtype}. Pass a slice of a (batch, height, width, 3) float32 array."
        )
    return out


def _open_pil(path: str, max_pixels: int) -> Image.Image:
    """Open (header only) and refuse bombs, including PIL's own refusal or warning-as-error."""
    try:
        image = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageTooLargeError(
            f"Refusing to decode {path!r}: {err} Pass a larger `max_pixels` (and raise "
            "PIL.Image.MAX_IMAGE_PIXELS) if the file is trusted, or remove it."
        ) from err
    try:
        check_pixels(path, image.height, image.width, max_pixels)
    except ImageTooLargeError:
        image.close()
        raise
    return image


def _pil_to_rgb(image: Image.Image, image_size: tuple[int, int]) -> Image.Image:
    """Resize an opened PIL image to (height, width) RGB, using the JPEG DCT scale first."""
    height, width = image_size
    if image.format == "JPEG":
        image.draft("RGB", (width, height))  # smallest 1/1..1/8 scale still >= the target
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # PIL warns when P+transparency goes straight to RGB
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    return image


def _uint8_into(array: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.divide(array, np.float32(255), out=out)
    return out


def decode_pil(
    path: str,
    image_size: tuple[int, int],
    *,
    out: np.ndarray | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """PIL: JPEG draft mode (reduced DCT scale ≥ target), then a bilinear antialiased resize."""
    out = _output(out, image_size)
    with _open_pil(path, max_pixels) as image:
        return _uint8_into(np.asarray(_pil_to_rgb(image, image_size)), out)


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

    out = _output(out, image_size)
    with _open_pil(path, max_pixels) as header:  # imread has no pixel limit of its own
        # imread hands CMYK JPEGs back unconverted; convert those with PIL instead.
        image = np.asarray(header.convert("RGB")) if header.mode == "CMYK" else imread(path)
    if image.ndim == 4:  # imageio returns GIFs as (frames, H, W, C); keep the first frame
        image = image[0]
    if image.ndim == 3:
        image = image[:, :, :1] if image.shape[2] == 2 else image[:, :, :3]
    resized = resize(image, image_size)
    out[...] = resized if resized.ndim == 3 else resized[:, :, None]
    return out


def _import_simplejpeg() -> object:
    try:
        import simplejpeg
    except ImportError as err:
        raise ImportError(
            "decoder='simplejpeg' needs the `simplejpeg` package. Install it with "
            "`pip install 'feeders[fastjpeg]'`, or use decoder='pil'."
        ) from err
    return simplejpeg


def decode_simplejpeg(
    path: str,
    image_size: tuple[int, int],
    *,
    out: np.ndarray | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """libjpeg-turbo at reduced DCT scale with fast DCT; non-JPEG (and CMYK) files go to PIL."""
    simplejpeg: Any = _import_simplejpeg()
    with open(path, "rb") as file:
        data = file.read()
    if not data.startswith(b"\xff\xd8\xff"):
        return decode_pil(path, image_size, out=out, max_pixels=max_pixels)
    out = _output(out, image_size)
    height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    check_pixels(path, height, width, max_pixels)
    if colorspace not in ("Gray", "YCbCr", "RGB"):
        return decode_pil(path, image_size, out=out, max_pixels=max_pixels)
    # Power-of-two DCT scales only, like PIL's draft: libjpeg-turbo's N/8 scales (e.g. 6/8)
    # alias visibly (mean |diff| vs skimage 0.021 instead of 0.008 on the test photos).
    scale = _draft_scale(height, width, image_size)
    array = simplejpeg.decode_jpeg(
        data,
        colorspace="RGB",
        fastdct=True,
        fastupsample=True,
        min_height=-(-height // scale),
        min_width=-(-width // scale),
    )
    if array.shape[:2] != image_size:
        resized = Image.fromarray(array).resize(image_size[::-1], Image.Resampling.BILINEAR)
        array = np.asarray(resized)
    return _uint8_into(array, out)


def _draft_scale(height: int, width: int, image_size: tuple[int, int]) -> int:
    """The largest of 8, 4, 2, 1 that keeps both sides ≥ the target (PIL draft's rule)."""
    fits = min(height // image_size[0], width // image_size[1])
    return next(s for s in (8, 4, 2, 1) if s <= max(fits, 1))


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
    out = _output(out, image_size)
    contents = tf_decode.read_checked(path, max_pixels)
    out[...] = tf_decode.decode_contents_fn(image_size)(contents).numpy()
    return out


def tf_decode_fn(
    image_size: tuple[int, int], *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Callable[[tf.Tensor], tf.Tensor]:
    """A pure-TF `path → image` function for `tf.data` maps (and tf.data service workers).

    Why pure TF: it runs in graph mode, in parallel, on machines without this package's
    Python objects. A file over `max_pixels` fails the map with InvalidArgumentError naming
    the file; so does a format whose size cannot be read from its header.
    """
    return tf_decode.path_fn(validate_image_size(image_size), max_pixels)


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


# Name → decoder. "auto" takes the first available of AUTO_ORDER. Measured by
# feeders/benchmarks/bench_images.py (2,000 JPEGs of 200-500 px → 200x200, one thread, 2-core VM):
# simplejpeg ~1,100 images/s, pil ~1,080 (within noise: both spend about half their time
# in PIL's resize), tf ~520, skimage ~160.
DECODERS: dict[str, Decoder] = {
    "pil": decode_pil,
    "skimage": decode_skimage,
    "tf": decode_tf,
    "simplejpeg": decode_simplejpeg,
}
AUTO_ORDER: tuple[str, ...] = ("simplejpeg", "pil")


def _available(name: str) -> bool:
    if name != "simplejpeg":
        return True
    try:
        _import_simplejpeg()
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
    if name == "tf":
        require_tf("decoder='tf'")
    if not _available(name):
        _import_simplejpeg()
    return name
