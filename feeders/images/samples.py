"""Real photo files for tests, benchmarks and demos, written from scikit-image's bundled images.

Why: decoders must be checked on real JPEG/PNG bytes (DCT scaling, chroma subsampling,
palettes, alpha) rather than on synthetic arrays, and without downloading anything. Every
file is a seeded crop/rescale of a photo that ships inside scikit-image, so the same seed
writes the same files on every machine.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

# Photos bundled with scikit-image (no network, no pooch); "camera" is grayscale.
PHOTOS: tuple[str, ...] = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "colorwheel",
    "camera",
)
# PIL mode per output kind; "P" is a 64-colour palette, "CMYK" is JPEG only.
MODES: tuple[str, ...] = ("RGB", "L", "LA", "RGBA", "P", "CMYK")
FORMATS: dict[str, str] = {"jpeg": ".jpg", "png": ".png", "bmp": ".bmp", "gif": ".gif"}
_FORMAT_MODES: dict[str, frozenset[str]] = {
    "jpeg": frozenset({"RGB", "L", "CMYK"}),
    "png": frozenset({"RGB", "L", "LA", "RGBA", "P"}),
    "bmp": frozenset({"RGB", "L", "P"}),
    "gif": frozenset({"RGB", "L", "P"}),
}
_cache: dict[str, np.ndarray] = {}


def photo(name: str) -> np.ndarray:
    """One bundled photo as uint8 (H, W, 3) RGB, cached; grayscale photos are replicated."""
    if name not in PHOTOS:
        raise ValueError(f"`name` must be one of {list(PHOTOS)}, but got name={name!r}.")
    if name not in _cache:
        import skimage.data

        image = np.asarray(getattr(skimage.data, name)(), dtype=np.uint8)
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        _cache[name] = np.ascontiguousarray(image[:, :, :3])
    return _cache[name]


def crop(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A random crop (at least half of each side) of a random photo, resized to (height, width)."""
    source = photo(PHOTOS[int(rng.integers(len(PHOTOS)))])
    h, w = source.shape[:2]
    ch, cw = int(rng.integers(h // 2, h + 1)), int(rng.integers(w // 2, w + 1))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    window = Image.fromarray(source[top : top + ch, left : left + cw])
    resized = window.resize((size[1], size[0]), Image.Resampling.BICUBIC)
    return np.asarray(resized)


def to_mode(rgb: np.ndarray, mode: str) -> Image.Image:
    """Convert an RGB uint8 array to a PIL image of `mode`, with a real alpha ramp for LA/RGBA."""
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {list(MODES)}, but got mode={mode!r}.")
    image = Image.fromarray(rgb)
    if mode == "P":
        return image.quantize(colors=64)
    converted = image.convert(mode)
    if mode in ("LA", "RGBA"):
        ramp = np.linspace(64, 255, rgb.shape[1], dtype=np.uint8)
        converted.putalpha(Image.fromarray(np.broadcast_to(ramp, rgb.shape[:2]).copy()))
    return converted


def write_image(path: str | os.PathLike[str], rgb: np.ndarray, *, mode: str = "RGB") -> Path:
    """Write `rgb` (uint8 HxWx3) to `path` in `mode`; the format follows the file extension."""
    out = Path(path)
    image = to_mode(rgb, mode)
    if out.suffix.lower() in (".jpg", ".jpeg"):
        if mode in ("LA", "RGBA", "P"):
            raise ValueError(f"JPEG cannot store mode={mode!r}; use a .png path for {out.name}.")
        image.save(out, quality=90)
    else:
        if mode == "CMYK":
            raise ValueError(f"mode='CMYK' is JPEG only, but got path={out.name!r}.")
        image.save(out)
    return out


def write_photos(
    directory: str | os.PathLike[str],
    count: int,
    *,
    sizes: tuple[int, int] = (200, 500),
    formats: Sequence[str] = ("jpeg",),
    modes: Sequence[str] = ("RGB",),
    seed: int = 0,
    prefix: str = "img",
    progress: bool = False,
) -> list[Path]:
    """Write `count` photo crops with sides in `sizes` (inclusive), cycling formats and modes.

    File `i` is `{prefix}{i:06d}{ext}` with format `formats[i % len]` and mode `modes[i % len]`;
    a mode the format cannot hold is written as RGB. Returns the paths in order.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"`formats` must be among {list(FORMATS)}, but got {unknown}.")
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths: list[Path] = []
    with progress_bar(progress, count, f"writing {count} images") as advance:
        for i in range(count):
            fmt, mode = formats[i % len(formats)], modes[i % len(modes)]
            if mode not in _FORMAT_MODES[fmt]:
                mode = "RGB"
            h, w = (int(v) for v in rng.integers(sizes[0], sizes[1] + 1, size=2))
            path = root / f"{prefix}{i:06d}{FORMATS[fmt]}"
            paths.append(write_image(path, crop(rng, (h, w)), mode=mode))
            advance(1)
    return paths


@contextlib.contextmanager
def progress_bar(enabled: bool, total: int, description: str) -> Iterator[Callable[[int], None]]:
    """Yield `advance(n)`: a transient rich progress bar on stderr when `enabled`, else a no-op.

    Why stderr: benchmarks print JSON lines on stdout.
    """
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
