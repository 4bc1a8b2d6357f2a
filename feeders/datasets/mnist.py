"""MNIST without a network: the full set when it is on disk, else a bundled sample.

Keras' own MNIST loader downloads, and training machines are often offline; this
loader reads the same file from the places it is usually found, and falls back to
a small sample shipped with the package so that examples and tests always run.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
import zipfile
import zlib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["BUNDLED", "MNIST_ENV_VAR", "MnistSplits", "load_mnist", "mnist_source"]

MNIST_ENV_VAR = "FEEDERS_DATA_DIR"
"""Environment variable naming a folder that holds ``mnist.npz`` or the four IDX files."""

BUNDLED = "bundled"
"""What `mnist_source` returns when only the bundled sample is available."""

Uint8Array = npt.NDArray[np.uint8]
MnistSplits = tuple[tuple[Uint8Array, Uint8Array], tuple[Uint8Array, Uint8Array]]

_NPZ_NAME = "mnist.npz"
_SAMPLE = ("data", "mnist_sample.npz")
# Key -> (original IDX file name, IDX magic number: 0x08 = uint8, low byte = ndim).
_IDX = {
    "x_train": ("train-images-idx3-ubyte", 2051),
    "y_train": ("train-labels-idx1-ubyte", 2049),
    "x_test": ("t10k-images-idx3-ubyte", 2051),
    "y_test": ("t10k-labels-idx1-ubyte", 2049),
}
_KEYS = list(_IDX)
_WANTED = f"{_NPZ_NAME} or the four IDX files ({', '.join(n + '[.gz]' for n, _ in _IDX.values())})"


class _Found(NamedTuple):
    where: Path  # the .npz file, or the folder of IDX files
    idx: dict[str, Path] | None  # key -> IDX file, when reading IDX


def load_mnist(path: str | os.PathLike[str] | None = None) -> MnistSplits:
    """Load MNIST as ``(x_train, y_train), (x_test, y_test)``, never downloading.

    Shapes and dtypes match Keras' MNIST loader: (n, 28, 28) and (n,), uint8. The
    first location that holds the data wins: `path`; ``$FEEDERS_DATA_DIR``; the Keras
    cache (``$KERAS_HOME/datasets``, default ``~/.keras/datasets``). In each folder
    ``mnist.npz`` is tried before the four original IDX files (gzipped or plain).
    When none has it, the bundled sample (first 8,000 training and 2,000 test images,
    CC BY-SA 3.0) is returned and one line on stderr says so; `mnist_source` tells
    which location a call will use.

    Args:
        path: An ``.npz`` file with keys x_train, y_train, x_test, y_test, or a folder
            holding ``mnist.npz`` or the IDX files. Given, it is the only place looked.

    Returns:
        ``((x_train, y_train), (x_test, y_test))`` as writable uint8 arrays.

    Raises:
        FileNotFoundError: `path` is given but does not exist or lacks the files.
        ValueError: The file found is not valid MNIST (keys, shapes, dtypes, header).
    """
    found = _locate(path)
    if found is None:
        ref = resources.files("feeders.datasets").joinpath(*_SAMPLE)
        with resources.as_file(ref) as sample:
            splits = _check(_read_npz(sample), dict.fromkeys(_KEYS, f"bundled sample {sample}"))
        n = len(splits[0][0]) + len(splits[1][0])
        print(
            f"feeders: full MNIST not found (looked in {', '.join(map(str, _default_folders()))}; "
            f"set {MNIST_ENV_VAR} to a folder with {_NPZ_NAME}); "
            f"using the bundled {n:,}-image sample (CC BY-SA 3.0).",
            file=sys.stderr,
        )
        return splits
    if found.idx is None:
        return _check(_read_npz(found.where), dict.fromkeys(_KEYS, str(found.where)))
    arrays = {key: _read_idx(file, _IDX[key][1]) for key, file in found.idx.items()}
    return _check(arrays, {key: str(file) for key, file in found.idx.items()})


def mnist_source(path: str | os.PathLike[str] | None = None) -> str:
    """Say where `load_mnist` would read from, without reading it.

    Lets a caller tell the full set from the sample before training on it.

    Returns:
        The ``.npz`` file or IDX folder as a string, or `BUNDLED` for the sample.

    Raises:
        FileNotFoundError: As `load_mnist`, for a given `path` without the data.
    """
    found = _locate(path)
    return BUNDLED if found is None else str(found.where)


def _default_folders() -> list[Path]:
    folders = []
    if env := os.environ.get(MNIST_ENV_VAR):
        folders.append(Path(env).expanduser())
    # Same rule as keras.utils.get_file: $KERAS_HOME, else ~/.keras.
    keras_home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    folders.append(Path(keras_home).expanduser() / "datasets")
    return folders


def _locate(path: str | os.PathLike[str] | None) -> _Found | None:
    if path is None:
        return next(filter(None, map(_find_in, _default_folders())), None)
    given = Path(path).expanduser()
    if given.is_file():
        return _Found(given, None)
    if not given.is_dir():
        raise FileNotFoundError(
            f"`path` must be an .npz file or a folder holding {_WANTED}, but got "
            f"path='{given}', which does not exist. Fix the path, or leave path=None to "
            f"search ${MNIST_ENV_VAR}, the Keras cache, then the bundled sample."
        )
    found = _find_in(given)
    if found is None:
        missing = [_NPZ_NAME, *_idx_files(given)[1]]
        raise FileNotFoundError(
            f"`path` folder must hold {_WANTED}, but got path='{given}' without them "
            f"(missing: {', '.join(missing)}). Put {_NPZ_NAME} there, or pass the file itself."
        )
    return found


def _find_in(folder: Path) -> _Found | None:
    if (folder / _NPZ_NAME).is_file():
        return _Found(folder / _NPZ_NAME, None)
    found, missing = _idx_files(folder)
    return None if missing else _Found(folder, found)


def _idx_files(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """Map each key to its IDX file (plain preferred over .gz); list the missing names."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for key, (name, _) in _IDX.items():
        hits = [folder / n for n in (name, name + ".gz") if (folder / n).is_file()]
        if hits:
            found[key] = hits[0]
        else:
            missing.append(name + "[.gz]")
    return found, missing


def _read_npz(file: Path) -> dict[str, npt.NDArray[np.generic]]:
    # Open the file here: np.load leaks its own handle when the zip header is bad.
    with open(file, "rb") as stream:
        try:
            loaded = np.load(stream, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(
                f"'{file}' must be a readable .npz archive, but np.load failed on it "
                f"({type(err).__name__}: {err}). Re-save it with np.savez."
            ) from err
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError(
                f"'{file}' must be an .npz archive with keys {_KEYS}, but got a single array "
                f"of shape {np.shape(loaded)}. Save it with np.savez(file, x_train=..., ...)."
            )
        with loaded:
            missing = [key for key in _KEYS if key not in loaded.files]
            if missing:
                raise ValueError(
                    f"'{file}' must hold the keys {_KEYS}, but got keys {sorted(loaded.files)} "
                    f"(missing {missing}). Save it with np.savez(file, x_train=..., "
                    f"y_train=..., x_test=..., y_test=...)."
                )
            try:
                return {key: loaded[key] for key in _KEYS}
            except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
                raise ValueError(
                    f"'{file}' is a damaged .npz archive ({type(err).__name__}: {err}). "
                    f"Copy or re-save it from a good source."
                ) from err


def _read_idx(file: Path, magic: int) -> Uint8Array:
    """Read one IDX file straight into its array: big-endian header, then raw uint8."""
    ndim = magic & 0xFF
    try:
        with _open(file) as stream:
            header = stream.read(4 + 4 * ndim)
            got = int.from_bytes(header[:4], "big")
            if len(header) < 4 + 4 * ndim or got != magic:
                raise ValueError(
                    f"'{file}' must start with the IDX magic number {magic} (uint8, {ndim}-D), "
                    f"but got {got} in a {len(header)}-byte header. Pass the original "
                    f"MNIST IDX files, unmodified."
                )
            shape = tuple(int(d) for d in np.frombuffer(header, ">u4", offset=4))
            array = np.empty(shape, np.uint8)
            view, filled = array.data.cast("B"), 0
            while filled < array.nbytes and (n := stream.readinto(view[filled:])):
                filled += n
            extra = stream.read(1)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise ValueError(
            f"'{file}' is not a readable gzip file ({type(err).__name__}: {err}). "
            f"Download it again, or gunzip it by hand to see the error."
        ) from err
    if filled != array.nbytes or extra:
        raise ValueError(
            f"'{file}' header gives shape {shape} ({array.nbytes} bytes), but got "
            f"{filled}{' or more' if extra else ''} bytes of data. The file is truncated "
            f"or corrupt: download it again."
        )
    return array


def _open(file: Path) -> io.BufferedIOBase:
    return gzip.open(file, "rb") if file.suffix == ".gz" else open(file, "rb")


def _check(arrays: Mapping[str, npt.NDArray[np.generic]], origins: dict[str, str]) -> MnistSplits:
    """Check shapes and dtypes, so a bad file fails here and not inside model.fit."""
    splits = []
    for split in ("train", "test"):
        x = _checked(f"x_{split}", (None, 28, 28), arrays, origins)
        splits.append((x, _checked(f"y_{split}", (len(x),), arrays, origins)))
    return splits[0], splits[1]


def _checked(
    key: str,
    want: tuple[int | None, ...],
    arrays: Mapping[str, npt.NDArray[np.generic]],
    origins: dict[str, str],
) -> Uint8Array:
    array = arrays[key]
    shape_ok = len(array.shape) == len(want) and all(
        w is None or w == g for w, g in zip(want, array.shape, strict=False)
    )
    if not shape_ok or array.dtype != np.uint8:
        shown = "(" + ", ".join("n" if w is None else str(w) for w in want)
        shown += ",)" if len(want) == 1 else ")"
        raise ValueError(
            f"`{key}` in '{origins[key]}' must be a uint8 array of shape {shown}, but got "
            f"shape {array.shape}, dtype {array.dtype}. Re-save the raw uint8 MNIST arrays "
            f"(not normalised or reshaped ones) under the keys {_KEYS}."
        )
    return array.astype(np.uint8, copy=False)  # a no-op that tells the type checker the dtype
