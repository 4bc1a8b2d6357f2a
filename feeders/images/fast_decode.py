"""The optional fast decoders: "opencv" (the `opencv` extra) and "simplejpeg" (`fastjpeg`).

Why their own module: they need packages a plain install does not bring, imported only when
a decoder runs, so that the `ImportError` can name the extra (house rule 10).

Why OpenCV is the fast one (benchmarks/bench_images.py, and the per-stage figures below:
CPU ms per image, one thread, 2,000 JPEGs of 200-500 px → 200x200): a JPEG decode at a
reduced power-of-two DCT scale costs ~0.32 ms in OpenCV's and simplejpeg's libjpeg-turbo,
~0.38 ms in PIL's. The resize that follows is what differs: PIL's antialiased bilinear
costs ~0.41 ms, OpenCV's SIMD `INTER_LINEAR` ~0.05 ms. After a DCT-scaled decode the
remaining downscale is below 2x, where a plain bilinear does not alias.

Mean |difference| from the "skimage" reference (the Keras guide's `resize(imread(f))`; the
`quality:` rows of benchmarks/bench_images.py) over
100 of those files: "opencv" 0.0036 (0.37 ms); "simplejpeg" 0.0045 (~0.8 ms); for
comparison "pil" 0.0045 (0.84 ms) and the hand-written tf.data pipeline's full-size decode and
plain bilinear 0.0048. libjpeg-turbo's fast DCT and fast chroma upsampling would save
~0.03 ms and cost quality (0.0061), so both decoders use the accurate ones.
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
    """`simplejpeg`, or an ImportError naming the `fastjpeg` extra."""
    try:
        import simplejpeg
    except ImportError as err:
        raise ImportError(
            "decoder='simplejpeg' needs the `simplejpeg` package. Install it with "
            "`pip install 'feeders[fastjpeg]'`, or use decoder='pil'."
        ) from err
    return simplejpeg


def decode_opencv(
    path: str,
    image_size: tuple[int, int],
    *,
    out: np.ndarray | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """OpenCV: JPEG decode at a reduced DCT scale ≥ the target, then a SIMD bilinear resize.

    Mean |difference| from "skimage" 0.0036, ~0.37 CPU ms per image (see the module
    docstring). Other formats, and CMYK JPEGs, are decoded by PIL (palettes, alpha and
    colour conversion as the "pil" decoder does them) and resized by OpenCV; a downscale of
    3x or more (a large non-JPEG, or a JPEG over 8x the target) averages areas instead.
    """
    cv2 = import_cv2()
    out = output(out, image_size)
    with open(path, "rb") as file:
        data = file.read()
    with open_pil(path, max_pixels, io.BytesIO(data)) as header:
        if header.format == "JPEG" and header.mode in ("RGB", "L"):
            scale = draft_scale(header.height, header.width, image_size)
            rgb = cv2.imdecode(np.frombuffer(data, np.uint8), _imread_flags(cv2, scale))
            if rgb is None:
                raise ValueError("OpenCV cannot decode this JPEG (truncated or corrupt)")
        else:
            rgb = np.asarray(pil_rgb(header, image_size))
    return store_uint8(resize(cv2, rgb, image_size), out)


def _imread_flags(cv2: Any, scale: int) -> int:
    """RGB (grayscale replicated) at 1/scale: OpenCV's reduced-size flags, minus their BGR bit.

    EXIF orientation is ignored, as PIL, skimage and TensorFlow's decoders ignore it: every
    decoder gives the same pixels (and aspect ratio) for the same file.
    """
    reduced = {
        1: 0,
        2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
        4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
        8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
    }
    return int(reduced[scale] | cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)


def resize(cv2: Any, rgb: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
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
    return cv2.resize(rgb, (width, height), interpolation=method)  # type: ignore[no-any-return]


def decode_simplejpeg(
    path: str,
    image_size: tuple[int, int],
    *,
    out: np.ndarray | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """libjpeg-turbo via simplejpeg at a reduced DCT scale, then PIL's bilinear resize.

    Mean |difference| from "skimage" 0.0045, ~0.8 CPU ms per image: the decode is a little
    cheaper than PIL's (3-10% of the total, by load), the (antialiased) resize the same. Non-JPEG and CMYK files go to PIL.
    """
    simplejpeg = import_simplejpeg()
    out = output(out, image_size)
    with open(path, "rb") as file:
        data = file.read()
    if not data.startswith(_JPEG_MAGIC):
        return _pil_fallback(path, data, image_size, out, max_pixels)
    height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    check_pixels(path, height, width, max_pixels)
    if colorspace not in ("Gray", "YCbCr", "RGB"):
        return _pil_fallback(path, data, image_size, out, max_pixels)
    scale = draft_scale(height, width, image_size)
    array = simplejpeg.decode_jpeg(
        data,
        colorspace="RGB",
        fastdct=False,
        fastupsample=False,
        min_height=-(-height // scale),
        min_width=-(-width // scale),
    )
    if array.shape[:2] != image_size:
        resized = Image.fromarray(array).resize(image_size[::-1], Image.Resampling.BILINEAR)
        array = np.asarray(resized)
    return store_uint8(array, out)


def _pil_fallback(
    path: str, data: bytes, image_size: tuple[int, int], out: np.ndarray, max_pixels: int
) -> np.ndarray:
    with open_pil(path, max_pixels, io.BytesIO(data)) as image:
        return store_uint8(pil_resized(image, image_size), out)
