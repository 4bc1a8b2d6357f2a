"""The TensorFlow decode path: header size check, DCT-scaled decode, resize, all as TF ops.

Why its own module: these functions must stay pure TF so that `tf.data` maps and tf.data
service workers can run them in graph mode, and they change for TF reasons (new formats,
op behaviour), not for the reasons the Python decoders in `decode.py` change. TensorFlow is
imported lazily so that PIL-only worker processes never start it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tensorflow as tf

_HEAD = 32  # bytes of header needed for PNG/GIF/BMP/WebP sizes, zero padded


# Header fields as (offset, byte count, big endian); one gather + one multiply-add reads them
# all. (Per-byte slicing, and a 7-way tf.case, each cost 10-30% of a tf.data map's throughput.)
_FIELDS: tuple[tuple[int, int, bool], ...] = (
    (20, 4, True),  # 0 PNG height
    (16, 4, True),  # 1 PNG width
    (8, 2, False),  # 2 GIF height
    (6, 2, False),  # 3 GIF width
    (22, 4, False),  # 4 BMP height (signed: negative for top-down rows)
    (18, 4, False),  # 5 BMP width
    (27, 3, False),  # 6 WebP VP8X height - 1
    (24, 3, False),  # 7 WebP VP8X width - 1
    (28, 2, False),  # 8 WebP VP8 height (low 14 bits)
    (26, 2, False),  # 9 WebP VP8 width (low 14 bits)
    (21, 4, False),  # 10 WebP VP8L: width - 1 in bits 0-13, height - 1 in bits 14-27
)


def _field_tables() -> tuple[list[list[int]], list[list[int]]]:
    index, weight = [], []
    for offset, count, big in _FIELDS:
        shifts = [8 * (count - 1 - i) if big else 8 * i for i in range(count)]
        index.append([offset + i for i in range(count)] + [0] * (4 - count))
        weight.append([1 << s for s in shifts] + [0] * (4 - count))
    return index, weight


def image_shape(contents: tf.Tensor) -> tf.Tensor:
    """(height, width) int64 from JPEG/PNG/GIF/BMP/WebP header bytes; (-1, -1) if unknown."""
    import tensorflow as tf

    # Only JPEG needs a branch: its size follows a variable run of segments.
    return tf.cond(_is_jpeg(contents), lambda: _jpeg_shape(contents), lambda: _shape(contents))


def _is_jpeg(contents: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    return tf.equal(tf.strings.substr(contents, 0, 3), b"\xff\xd8\xff")


def _jpeg_shape(contents: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    return tf.cast(tf.image.extract_jpeg_shape(contents)[:2], tf.int64)


def _shape(contents: tf.Tensor) -> tf.Tensor:
    """(height, width) from a PNG/GIF/BMP/WebP header; (-1, -1) for anything else."""
    import tensorflow as tf

    head = tf.strings.substr(tf.strings.join([contents, b"\0" * _HEAD]), 0, _HEAD)
    index, weight = _field_tables()
    raw = tf.cast(tf.gather(tf.io.decode_raw(head, tf.uint8), index), tf.int64)
    v = tf.reduce_sum(raw * tf.constant(weight, tf.int64), axis=1)
    signed = tf.where(v >= 1 << 31, v - (1 << 32), v)

    def magic(start: int, text: bytes) -> tf.Tensor:
        return tf.equal(tf.strings.substr(head, start, len(text)), text)

    webp = magic(0, b"RIFF") & magic(8, b"WEBP")
    candidates = [
        (magic(0, b"\x89PNG\r\n\x1a\n"), [v[0], v[1]]),
        (magic(0, b"GIF8"), [v[2], v[3]]),
        (magic(0, b"BM"), [tf.abs(signed[4]), signed[5]]),
        (webp & magic(12, b"VP8X"), [v[6] + 1, v[7] + 1]),
        (webp & magic(12, b"VP8 "), [v[8] % 16384, v[9] % 16384]),
        (webp & magic(12, b"VP8L"), [(v[10] // 16384) % 16384 + 1, v[10] % 16384 + 1]),
    ]
    shape = tf.constant([-1, -1], tf.int64)
    for is_format, height_width in reversed(candidates):
        shape = tf.where(is_format, tf.stack(height_width), shape)
    return shape


def _checks(
    path: tf.Tensor, shape: tf.Tensor, max_pixels: int, known: bool = False
) -> list[tf.Operation]:
    """Assert ops: the size is known (unless `known`: a JPEG's always is) and ≤ max_pixels."""
    import tensorflow as tf

    small = tf.debugging.Assert(
        shape[0] * shape[1] <= max_pixels,
        [
            f"feeders: refusing a possible decompression bomb over max_pixels={max_pixels}:",
            path,
            "height, width:",
            shape,
        ],
    )
    if known:
        return [small]
    readable = tf.debugging.Assert(
        shape[0] >= 0,
        ["feeders: not a JPEG, PNG, GIF, BMP or WebP file (size unreadable):", path],
    )
    return [readable, small]


@functools.cache
def decode_contents_fn(
    image_size: tuple[int, int], dtype: str = "float32"
) -> Callable[[tf.Tensor], tf.Tensor]:
    """A traced `bytes → (h, w, 3)` function (float32 in [0, 1], or uint8), one per size."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])  # type: ignore[untyped-decorator]
    def decode(contents: tf.Tensor) -> tf.Tensor:
        return _decode(contents, image_size, dtype)

    return decode  # type: ignore[no-any-return]  # tf.function is untyped


# NOTE [ DCT-scaled decode in TF ]
# `decode_jpeg`'s `ratio` (1, 2, 4 or 8: libjpeg-turbo's DCT scaling) is an op attribute,
# not a tensor, so the per-file choice is a `switch_case` over four decode ops. The ratio
# follows PIL's draft rule (the largest that keeps both sides ≥ the target), after which the
# remaining downscale is below 2x on the shorter side and a plain bilinear does not alias;
# from 3x on (a large PNG, or a JPEG over 8x the target) the resize antialiases.
_RATIOS = (1, 2, 4, 8)


def _decode(contents: tf.Tensor, image_size: tuple[int, int], dtype: str) -> tf.Tensor:
    """Decode (JPEG at a reduced DCT scale), resize and convert; no size checks."""
    import tensorflow as tf

    image = tf.cond(
        _is_jpeg(contents),
        lambda: _scaled_jpeg(contents, _jpeg_shape(contents), image_size),
        lambda: _decode_other(contents),
    )
    return _finish(image, image_size, dtype)


def _decode_other(contents: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    return tf.io.decode_image(contents, channels=3, expand_animations=False)


def _finish(image: tf.Tensor, image_size: tuple[int, int], dtype: str) -> tf.Tensor:
    import tensorflow as tf

    image = _resize(image, image_size)  # non-negative weights: never below 0
    if dtype == "uint8":
        image = tf.cast(tf.round(tf.minimum(image, 255.0)), tf.uint8)
    else:
        image = tf.minimum(image * (1 / 255), 1.0)
    image.set_shape((image_size[0], image_size[1], 3))
    return image


def _scaled_jpeg(contents: tf.Tensor, shape: tf.Tensor, image_size: tuple[int, int]) -> tf.Tensor:
    """uint8 RGB at the largest of 1/1..1/8 that keeps `shape` (height, width) ≥ the target."""
    import tensorflow as tf

    fits = tf.minimum(shape[0] // image_size[0], shape[1] // image_size[1])
    branch = tf.reduce_sum(tf.cast(fits >= tf.constant(_RATIOS[1:], fits.dtype), tf.int32))
    decoders = [
        functools.partial(tf.io.decode_jpeg, contents, channels=3, ratio=ratio) for ratio in _RATIOS
    ]
    return tf.switch_case(branch, decoders)


def _resize(image: tf.Tensor, image_size: tuple[int, int]) -> tf.Tensor:
    """float32 pixels in [0, 255] at `image_size`: bilinear, antialiased from 3x shrinking."""
    import tensorflow as tf

    size = tf.shape(image)[:2]
    target = tf.constant(image_size)
    shrinks = tf.reduce_all(size >= target) & tf.reduce_any(size >= 3 * target)
    return tf.cond(
        shrinks,
        lambda: tf.image.resize(image, image_size, method="bilinear", antialias=True),
        lambda: tf.image.resize(image, image_size, method="bilinear"),
    )


def path_fn(
    image_size: tuple[int, int], max_pixels: int, dtype: str = "float32"
) -> Callable[[tf.Tensor], tf.Tensor]:
    """`path → image` as TF ops, checking the header size before decoding."""
    import tensorflow as tf

    def jpeg(path: tf.Tensor, contents: tf.Tensor) -> tf.Tensor:
        shape = _jpeg_shape(contents)
        with tf.control_dependencies(_checks(path, shape, max_pixels, known=True)):
            return _scaled_jpeg(tf.identity(contents), shape, image_size)

    def other(path: tf.Tensor, contents: tf.Tensor) -> tf.Tensor:
        with tf.control_dependencies(_checks(path, _shape(contents), max_pixels)):
            return _decode_other(tf.identity(contents))

    def decode(path: tf.Tensor) -> tf.Tensor:
        contents = tf.io.read_file(path)
        image = tf.cond(
            _is_jpeg(contents), lambda: jpeg(path, contents), lambda: other(path, contents)
        )
        return _finish(image, image_size, dtype)

    return decode


@functools.cache
def _shape_fn() -> Callable[[tf.Tensor], tf.Tensor]:
    import tensorflow as tf

    return tf.function(image_shape, input_signature=[tf.TensorSpec([], tf.string)])  # type: ignore[no-any-return]


def read_checked(path: str, max_pixels: int) -> tf.Tensor:
    """Read a file and check its header size in Python, so errors keep Python types."""
    import tensorflow as tf

    from feeders.images._shared import check_pixels

    contents = tf.io.read_file(path)
    height, width = (int(v) for v in _shape_fn()(contents).numpy())
    if height < 0:
        raise ValueError(
            f"Cannot read the image size of {path!r}: not a JPEG, PNG, GIF, BMP or WebP file. "
            "Use decoder='pil' for other formats, or remove the file."
        )
    check_pixels(path, height, width, max_pixels)
    return contents
