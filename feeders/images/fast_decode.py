"""The libjpeg-turbo decoders: "opencv" (the `opencv` extra) and "simplejpeg" (a plain install).

Why their own module: they need packages that PIL-only code does not (OpenCV is an extra,
simplejpeg a 0.4 MB core dependency), imported only when a decoder runs, so that the
`ImportError` can name what to install (house rule 10).

Why these two (benchmarks/bench_images.py, and the per-stage figures below: CPU ms per
image, one thread, 2,000 JPEGs of 200-500 px → 200x200; most are under 2x the target on
their shorter side, so the "DCT-scaled" decode is a full-size one): libjpeg-turbo's decode
costs ~0.31 ms in simplejpeg (whose header read costs 0.001 ms, against 0.016 for PIL's
`Image.open`), ~0.32 in OpenCV's `imdecode`, ~0.38 in PIL's; a 1/8-scale decode still
costs ~0.22, the entropy decoding that no scale skips. The resize that follows is what
differs: OpenCV's SIMD `INTER_LINEAR` ~0.08 ms, PIL's antialiased `BILINEAR` ~0.47 and its
`BOX` ~0.33 (each plus ~0.05 per copy into and out of PIL). After a DCT-scaled decode the
remaining downscale is below 2x, where a plain bilinear does not alias.

So "opencv" decodes with simplejpeg and resizes with OpenCV: 0.36 ms per image, mean
|difference| from the "skimage" reference (the Keras guide's `resize(imread(f))`; the
`quality:` rows of benchmarks/bench_images.py, 100 of those files) 0.0061. It uses
libjpeg-turbo's fast integer DCT and fast chroma upsampling: 0.027 ms (7%) less than the
accurate ones, whose 0.0036 is better than the hand-written tf.data pipeline's 0.0048;
`decode_opencv(..., fast=False)` gives that. "simplejpeg" resizes with PIL's `BILINEAR`,
as "pil" does: 0.87 ms and 0.0045, against 0.90 ms for "pil" (PIL's own decode and header).
PIL's `BOX` would cost 0.72 ms at 0.0072, with worse edges (see `decode_simplejpeg`).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from feeders.images._shared import (
    DEFAULT_MAX_PIXELS,
    check_pixels,
    draft_scale,
    open_pil,
    output,
    pil_resized,
    pil_rgb,
    store_uint8,
)

_JPEG_MAGIC = b"\xff\xd8\xff"


def import_cv2() -> Any:
    """`cv2`, or an ImportError naming the extra (any OpenCV wheel provides `cv2`)."""
    try:
        import cv2
    except ImportError as err:
        raise ImportError(
            "decoder='opencv' needs OpenCV (the `cv2` module). Install it with "
            "`pip install 'feeders[opencv]'` (opencv-python-headless; an opencv-python or "
            "opencv-contrib-python you already have works too), or use decoder='pil'."
        ) from err
    return cv2


def import_simplejpeg() -> Any:
    """`simplejpeg` (a core dependency), or an ImportError saying how to install it."""
    try:
        import simplejpeg
    except ImportError as err:
        raise ImportError(
            "decoders 'opencv' and 'simplejpeg' need the `simplejpeg` package, a dependency of "
            "feeders that is missing here. Install it with `pip install simplejpeg` (or "
            "`pip install 'feeders[fastjpeg]'`), or use decoder='pil'."
        ) from err
    return simplejpeg


def decode_opencv(
    path: str,
    image_size: tuple[int, int],
    *,
    out: np.ndarray | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    fast: bool = True,
) -> np.ndarray:
    """simplejpeg's decode at a reduced DCT scale ≥ the target, then OpenCV's SIMD bilinear.

    Mean |difference| from "skimage" 0.0061, ~0.36 CPU ms per image; `fast=False` (the
    accurate DCT and chroma upsampling) 0.0036 at ~0.39 ms (see the module docstring).
    Other formats, and CMYK JPEGs, are decoded by PIL (palettes, alpha and colour
    conversion as the "pil" decoder does them) and resized by OpenCV; a downscale of 3x or
    more (a large non-JPEG, or a JPEG over 8x the target) averages areas instead. The
    resize writes straight into a uint8 `out`.
    """
    cv2 = import_cv2()
    out = output(out, image_size)
    with open(path, "rb") as file:
        data = file.read()
    rgb = scaled_jpeg(import_simplejpeg(), path, data, image_size, max_pixels, fast=fast)
    if rgb is None:
        with open_pil(path, max_pixels, io.BytesIO(data)) as header:
            rgb = np.asarray(pil_rgb(header, image_size))
    if rgb.shape[:2] == image_size:
        return store_uint8(rgb, out)
    if out.dtype == np.uint8:
        resized = resize(cv2, rgb, image_size, dst=out)
        if resized is not out:  # OpenCV reallocates a `dst` it cannot write (never, here)
            np.copyto(out, resized)
        return out
    return store_uint8(resize(cv2, rgb, image_size), out)


def scaled_jpeg(
    simplejpeg: Any,
    path: str,
    data: bytes,
    image_size: tuple[int, int],
    max_pixels: int,
    *,
    fast: bool,
) -> np.ndarray | None:
    """RGB uint8 at the smallest power-of-two DCT scale ≥ the target; None if not a plain JPEG.

    None for other formats and for CMYK/YCCK JPEGs (which PIL converts). The header's size
    is checked against `max_pixels` before anything is decoded.
    """
    if not data.startswith(_JPEG_MAGIC):
        return None
    height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    check_pixels(path, height, width, max_pixels)
    if colorspace not in ("Gray", "YCbCr", "RGB"):
        return None
    scale = draft_scale(height, width, image_size)
    return simplejpeg.decode_jpeg(  # type: ignore[no-any-return]
        data,
        colorspace="RGB",
        fastdct=fast,
        fastupsample=fast,
        min_height=-(-height // scale),
        min_width=-(-width // scale),
    )


def resize(
    cv2: Any, rgb: np.ndarray, image_size: tuple[int, int], dst: np.ndarray | None = None
) -> np.ndarray:
    """`rgb` at (height, width): bilinear, or area averaging when shrinking by 3x or more.

    Why 3x: a bilinear's two taps per output pixel skip input pixels (alias) from 2x on,
    but the power-of-two DCT scale keeps the shorter side's factor below 2, so the longer
    one stays below ~2.5 on ordinary aspect ratios; `INTER_AREA` there cost +0.2 ms per
    image for a mean |diff| of 0.0031 instead of 0.0036 (the benchmark's JPEGs).
    """
    height, width = image_size
    h, w = rgb.shape[:2]
    if (h, w) == (height, width):
        return rgb
    shrinks = h >= height and w >= width and (h >= 3 * height or w >= 3 * width)
    method = cv2.INTER_AREA if shrinks else cv2.INTER_LINEAR
    return cv2.resize(rgb, (width, height), dst=dst, interpolation=method)  # type: ignore[no-any-return]


def decode_simplejpeg(
    path: str,
    image_size: tuple[int, int],
    *,
    out: np.ndarray | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """libjpeg-turbo via simplejpeg at a reduced DCT scale, then PIL's antialiased bilinear.

    What "auto" is without OpenCV. Mean |difference| from "skimage" 0.0045, ~0.87 CPU ms
    per image, most of it PIL's resize (see the module docstring: `BOX` would save 0.15 ms
    but puts the 99th percentile of a grayscale photo at 96x128 over tests/test_images.py's
    0.1). Non-JPEG and CMYK files go to PIL.
    """
    out = output(out, image_size)
    with open(path, "rb") as file:
        data = file.read()
    array = scaled_jpeg(import_simplejpeg(), path, data, image_size, max_pixels, fast=False)
    if array is None:
        with open_pil(path, max_pixels, io.BytesIO(data)) as image:
            return store_uint8(pil_resized(image, image_size), out)
    if array.shape[:2] != image_size:
        resized = Image.fromarray(array).resize(image_size[::-1], Image.Resampling.BILINEAR)
        array = np.asarray(resized)
    return store_uint8(array, out)
