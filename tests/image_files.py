"""Real and deliberately broken image files for the image tests.

The real photos come from `feeders.images.samples` (the one writer tests, benchmarks and
the CLI share); this module adds the kinds of file a dataset goes wrong with.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image

from feeders.images.samples import write_photos

# (format, mode) pairs covering every conversion path the decoders have.
KINDS: tuple[tuple[str, str], ...] = (
    ("jpeg", "RGB"),
    ("jpeg", "RGB"),
    ("jpeg", "L"),
    ("jpeg", "CMYK"),
    ("png", "RGB"),
    ("png", "L"),
    ("png", "LA"),
    ("png", "RGBA"),
    ("png", "P"),
    ("gif", "P"),
    ("bmp", "RGB"),
)


def write_kinds(directory: Path) -> list[Path]:
    """One real photo crop per entry of KINDS, named `{index}_{format}_{mode}.ext`."""
    return [
        write_photos(
            directory, 1, formats=(fmt,), modes=(mode,), seed=i, prefix=f"{i}_{fmt}_{mode}_"
        )[0]
        for i, (fmt, mode) in enumerate(KINDS)
    ]


def write_webps(directory: Path, rgb_source: Path) -> list[Path]:
    """The three WebP layouts: lossy (VP8), lossless (VP8L) and extended with alpha (VP8X)."""
    with Image.open(rgb_source) as source:
        rgb = source.convert("RGB")
    rgba = rgb.copy()
    rgba.putalpha(128)
    layouts: dict[str, tuple[Image.Image, dict[str, Any]]] = {
        "vp8": (rgb, {}),
        "vp8l": (rgb, {"lossless": True}),
        "vp8x": (rgba, {"exif": b"x"}),
    }
    paths = []
    for name, (image, options) in layouts.items():
        path = directory / f"{name}.webp"
        image.save(path, **options)
        paths.append(path)
    return paths


def truncated(source: Path, target: Path) -> Path:
    """The first half of a real file."""
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def garbage(target: Path) -> Path:
    """A JPEG signature followed by noise: opens as JPEG, fails to decode."""
    target.write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 8)
    return target


def png_bomb(source_png: Path, target: Path, side: int = 100_000) -> Path:
    """A real PNG whose IHDR claims `side` x `side` pixels (CRC fixed, so it parses)."""
    data = bytearray(source_png.read_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", side, side)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    target.write_bytes(bytes(data))
    return target


def jpeg_bomb(source_jpeg: Path, target: Path, side: int = 65_000) -> Path:
    """A real baseline JPEG whose SOF0 header claims `side` x `side` pixels."""
    data = bytearray(source_jpeg.read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", side, side)
    target.write_bytes(bytes(data))
    return target
