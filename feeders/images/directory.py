"""Index a class-per-folder image tree: `root/<class name>/**/<image>`.

Why sorted everywhere: the same tree must give the same files, labels and class indices on
every machine and every run, whatever order the file system lists entries in.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import numpy as np

from feeders.images.samples import progress_bar

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def index_directory(
    root: str | os.PathLike[str],
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
    *,
    progress: bool | None = None,
) -> tuple[list[str], np.ndarray, list[str]]:
    """Return (files, int64 labels, class_names) for `root`, classes = sorted sub-folders.

    Files are found recursively (symlinked folders are not followed) and matched on their
    lower-cased extension. `progress=None` shows a bar only when stderr is a terminal.

    Raises:
        FileNotFoundError / NotADirectoryError: `root` is missing or a file.
        ValueError: no class sub-folders, or no image files in any of them.
    """
    path = os.fspath(root)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"`root` must be an existing directory, but got root={path!r}, which does not "
            "exist. Check the path (it is resolved from the current working directory)."
        )
    if not os.path.isdir(path):
        raise NotADirectoryError(
            f"`root` must be a directory with one sub-folder per class, but got root={path!r}, "
            "which is a file. Pass its parent folder, or list the files yourself."
        )
    suffixes = _normalize_extensions(extensions)
    class_names = sorted(e.name for e in os.scandir(path) if e.is_dir())
    if not class_names:
        raise ValueError(
            f"`root` must contain one sub-folder per class, but {path!r} has no sub-folders. "
            "Move each class's images into root/<class name>/."
        )
    files: list[str] = []
    counts: list[int] = []
    show = sys.stderr.isatty() if progress is None else progress
    with progress_bar(show, len(class_names), f"indexing {path}") as advance:
        for name in class_names:
            found = _images_under(os.path.join(path, name), suffixes)
            files.extend(found)
            counts.append(len(found))
            advance(1)
    if not files:
        raise ValueError(
            f"`root` must hold image files ({', '.join(suffixes)}) in its class sub-folders, but "
            f"the {len(class_names)} sub-folders of {path!r} hold none. Check `root` and "
            "`extensions`."
        )
    labels = np.repeat(np.arange(len(class_names), dtype=np.int64), counts)
    return files, labels, class_names


def _normalize_extensions(extensions: Sequence[str]) -> tuple[str, ...]:
    if isinstance(extensions, str):
        extensions = (extensions,)
    if not extensions or not all(isinstance(e, str) and e.startswith(".") for e in extensions):
        raise ValueError(
            f"`extensions` must be a non-empty sequence of suffixes like '.jpg', but got "
            f"extensions={tuple(extensions)!r}."
        )
    return tuple(e.lower() for e in extensions)


def _images_under(folder: str, suffixes: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        found.extend(
            os.path.join(dirpath, f) for f in sorted(filenames) if f.lower().endswith(suffixes)
        )
    return found
