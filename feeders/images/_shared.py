"""What every image decoder shares: the output contract, the pixel limit, PIL's header and RGB.

Why one module: the PIL decoders (`decode.py`) and the optional fast ones (`fast_decode.py`)
must agree on what they write (float32 in [0, 1], or uint8 in [0, 255]), refuse the same
decompression bombs with the same error, and hand the same RGB pixels to their resize; the
registry in `decode.py` imports both, so this plumbing cannot live in either.
"""

from __future__ import annotations

from typing import IO

import numpy as np
from PIL import Image

DEFAULT_MAX_PIXELS: int = int(Image.MAX_IMAGE_PIXELS or 89_478_485)  # PIL's default: 1 GiB / 4 / 3
OUTPUT_DTYPES: tuple[str, ...] = ("float32", "uint8")
_INV_255 = np.float32(1 / 255)


def pil_max_pixels() -> int | None:
    """PIL's current limit: PIL warns above it (an error under -W error), refuses above 2x."""
    return None if Image.MAX_IMAGE_PIXELS is None else int(Image.MAX_IMAGE_PIXELS)


class ImageTooLargeError(Image.DecompressionBombError, ValueError):
    """An image whose header claims more than `max_pixels` pixels: refused, never decoded.

    Why both bases: code that already catches PIL's `DecompressionBombError` keeps working,
    and the house rule makes a bad value a `ValueError`.
    """


def check_pixels(path: str, height: int, width: int, max_pixels: int) -> None:
    """Raise `ImageTooLargeError` when a header's height x width exceeds `max_pixels`."""
    if height * width > max_pixels:
        raise ImageTooLargeError(
            f"Refusing to decode {path!r}: its header claims {height}x{width} = "
            f"{height * width:,} pixels, more than max_pixels={max_pixels:,} (a possible "
            "decompression bomb). Pass a larger `max_pixels` if the file is trusted, or remove it."
        )


def output(out: np.ndarray | None, image_size: tuple[int, int]) -> np.ndarray:
    """`out` checked against (height, width, 3) float32 or uint8; a new float32 one if None."""
    shape = (image_size[0], image_size[1], 3)
    if out is None:
        return np.empty(shape, np.float32)
    if out.shape != shape or out.dtype.name not in OUTPUT_DTYPES:
        raise ValueError(
            f"`out` must be float32 or uint8 with shape {shape}, but got shape={out.shape} "
            f"dtype={out.dtype}. Pass a slice of a (batch, height, width, 3) array."
        )
    return out


def store_uint8(rgb: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write uint8 RGB pixels into `out`: as they are, or as float32 / 255 (one pass)."""
    if out.dtype == np.uint8:
        np.copyto(out, rgb)
    else:
        np.multiply(rgb, _INV_255, out=out)
    return out


def store_unit(image: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write float pixels in [0, 1] into `out`: as float32, or rounded to uint8 [0, 255]."""
    if out.dtype == np.uint8:
        np.copyto(out, np.rint(np.clip(image, 0, 1) * 255), casting="unsafe")
    else:
        out[...] = image
    return out


def open_pil(path: str, max_pixels: int, file: IO[bytes] | None = None) -> Image.Image:
    """Open (header only) and refuse bombs, including PIL's own refusal or warning-as-error."""
    try:
        image = Image.open(path if file is None else file)
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


def pil_rgb(image: Image.Image, image_size: tuple[int, int]) -> Image.Image:
    """An opened image as RGB, decoded at the smallest JPEG DCT scale still ≥ `image_size`."""
    height, width = image_size
    if image.format == "JPEG":
        image.draft("RGB", (width, height))  # smallest 1/1..1/8 scale still >= the target
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # PIL warns when P+transparency goes straight to RGB
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image


def pil_resized(image: Image.Image, image_size: tuple[int, int]) -> np.ndarray:
    """`pil_rgb`, then PIL's bilinear (antialiased when shrinking) resize: uint8 (h, w, 3)."""
    rgb = pil_rgb(image, image_size)
    if rgb.size != image_size[::-1]:
        rgb = rgb.resize(image_size[::-1], Image.Resampling.BILINEAR)
    return np.asarray(rgb)


def draft_scale(height: int, width: int, image_size: tuple[int, int]) -> int:
    """The largest of 8, 4, 2, 1 that keeps both sides ≥ the target (PIL draft's rule).

    Power-of-two DCT scales only: libjpeg-turbo's N/8 scales (e.g. 6/8) are slower (no SIMD
    IDCT) and alias (mean |diff| vs skimage 0.008 instead of 0.0036 with OpenCV's resize).
    """
    fits = min(height // image_size[0], width // image_size[1])
    return next(s for s in (8, 4, 2, 1) if s <= max(fits, 1))
