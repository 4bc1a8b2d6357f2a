"""The TensorFlow decode path: header size check, decode, antialiased resize, all as TF ops.

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

    # Only JPEG needs a branch: its size follows a variable run of segments.
    def jpeg() -> tf.Tensor:
        return tf.cast(tf.image.extract_jpeg_shape(contents)[:2], tf.int64)

    return tf.cond(magic(0, b"\xff\xd8\xff"), jpeg, lambda: shape)


def _checks(path: tf.Tensor, shape: tf.Tensor, max_pixels: int) -> list[tf.Operation]:
    import tensorflow as tf

    known = tf.debugging.Assert(
        shape[0] >= 0,
        ["feeders: not a JPEG, PNG, GIF, BMP or WebP file (size unreadable):", path],
    )
    small = tf.debugging.Assert(
        shape[0] * shape[1] <= max_pixels,
        [
            f"feeders: refusing a possible decompression bomb over max_pixels={max_pixels}:",
            path,
            "height, width:",
            shape,
        ],
    )
    return [known, small]


@functools.cache
def decode_contents_fn(image_size: tuple[int, int]) -> Callable[[tf.Tensor], tf.Tensor]:
    """A traced `bytes → float32 (h, w, 3) in [0, 1]` function, one per image size."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def decode(contents: tf.Tensor) -> tf.Tensor:
        return _decode(contents, image_size)

    return decode  # type: ignore[no-any-return]  # tf.function is untyped


def _decode(contents: tf.Tensor, image_size: tuple[int, int]) -> tf.Tensor:
    import tensorflow as tf

    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    image = tf.image.resize(image, image_size, method="bilinear", antialias=True)
    image = tf.clip_by_value(image / 255.0, 0.0, 1.0)
    image.set_shape((image_size[0], image_size[1], 3))
    return image


def path_fn(image_size: tuple[int, int], max_pixels: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """`path → image` as TF ops, checking the header size before decoding."""
    import tensorflow as tf

    def decode(path: tf.Tensor) -> tf.Tensor:
        contents = tf.io.read_file(path)
        with tf.control_dependencies(_checks(path, image_shape(contents), max_pixels)):
            return _decode(tf.identity(contents), image_size)

    return decode


@functools.cache
def _shape_fn() -> Callable[[tf.Tensor], tf.Tensor]:
    import tensorflow as tf

    return tf.function(image_shape, input_signature=[tf.TensorSpec([], tf.string)])  # type: ignore[no-any-return]


def read_checked(path: str, max_pixels: int) -> tf.Tensor:
    """Read a file and check its header size in Python, so errors keep Python types."""
    import tensorflow as tf

    from feeders.images.decode import check_pixels

    contents = tf.io.read_file(path)
    height, width = (int(v) for v in _shape_fn()(contents).numpy())
    if height < 0:
        raise ValueError(
            f"Cannot read the image size of {path!r}: not a JPEG, PNG, GIF, BMP or WebP file. "
            "Use decoder='pil' for other formats, or remove the file."
        )
    check_pixels(path, height, width, max_pixels)
    return contents
