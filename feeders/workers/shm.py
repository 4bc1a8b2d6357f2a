"""Shared-memory slots that carry batches from worker processes to the parent.

Why: pickling a 15 MB batch through a pipe copies it four times (pickle, pipe
write, pipe read, unpickle). Here a worker copies each array once into a slot
of one shared segment, sends a few hundred bytes of layout, and the parent
copies it once into its own array and frees the slot at once.

The parent owns the segment: it creates it (:class:`SlotPool`), checks that
``/dev/shm`` can hold it, and unlinks it exactly once. Workers only attach
(:class:`SlotWriter`).
"""

from __future__ import annotations

import _posixshmem
import contextlib
import errno
import mmap
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any

import numpy as np

from feeders.errors import SharedMemoryError
from feeders.structure import Tree, flatten

__all__ = [
    "NAME_PREFIX",
    "SHM_DIR",
    "ShmLeaf",
    "SlotPool",
    "SlotWriter",
    "data_segment",
    "layout",
    "map_leaves",
    "open_segment",
    "shm_free_bytes",
    "shm_full",
    "slot_bytes_for",
]

SHM_DIR = "/dev/shm"
NAME_PREFIX = "feeders_"
"""Every segment the pool creates is named ``feeders_<pid>_<random>``, so leaks are findable."""

_ALIGN = 64  # one cache line: each array starts aligned, as NumPy's own allocations do


@dataclass(frozen=True, slots=True)
class ShmLeaf:
    """Where one array of a batch lies in its slot (not a tuple, so trees keep it a leaf)."""

    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    offset: int


def map_leaves(fn: Callable[[Any], Any], tree: Tree) -> Tree:
    """Apply ``fn`` to every leaf in :func:`feeders.structure.flatten` order, keeping the nesting.

    Same nesting rules as ``structure.map_tree`` (mappings become dicts, list and
    tuple keep their type), in one walk: it runs twice per batch.
    """
    if isinstance(tree, Mapping):
        return {key: map_leaves(fn, value) for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        kind = type(tree) if type(tree) in (list, tuple) else list
        return kind(map_leaves(fn, value) for value in tree)
    return fn(tree)


def _fits_slot(leaf: Any) -> bool:
    return isinstance(leaf, np.ndarray) and not leaf.dtype.hasobject


def layout(leaves: list[Any]) -> tuple[list[ShmLeaf | None], int]:
    """Offsets of the slot-able arrays among ``leaves`` and the bytes they need.

    Leaves that are not plain ndarrays (``None``, scalars, object arrays) get
    ``None`` and travel inline with the layout message.
    """
    specs: list[ShmLeaf | None] = []
    offset = 0
    for leaf in leaves:
        if not _fits_slot(leaf):
            specs.append(None)
            continue
        specs.append(ShmLeaf(leaf.dtype, leaf.shape, offset))
        offset += -(-leaf.nbytes // _ALIGN) * _ALIGN
    return specs, offset


def slot_bytes_for(batch: Tree) -> int:
    """Slot size for batches like ``batch``: its arrays, rounded up to whole pages."""
    needed = layout(flatten(batch))[1]
    return -(-needed // mmap.PAGESIZE) * mmap.PAGESIZE


def shm_free_bytes() -> int | None:
    """Free bytes in ``/dev/shm``, or ``None`` where there is no such directory."""
    try:
        stats = os.statvfs(SHM_DIR)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


class SlotPool:
    """``slots`` equal slots in one shared segment, created and unlinked by the parent.

    Args:
        slots: how many batches can be in flight (the pool's ``max_queue_size``).
        slot_bytes: bytes per slot, from :func:`slot_bytes_for` on the first batch.

    Raises:
        SharedMemoryError: ``/dev/shm`` cannot hold ``slots * slot_bytes``.
    """

    def __init__(self, slots: int, slot_bytes: int) -> None:
        self.slot_bytes = slot_bytes
        total = slots * slot_bytes
        free = shm_free_bytes()
        if free is not None and total > free:
            raise _too_small(slots, slot_bytes, free)
        self._shm: shared_memory.SharedMemory | None = _create(total)
        self.name = self._shm.name
        try:
            _reserve(self.name, total)
        except OSError as err:
            self.close()
            if err.errno != errno.ENOSPC:
                raise
            raise _too_small(slots, slot_bytes, shm_free_bytes() or 0) from err
        self._free = list(range(slots - 1, -1, -1))

    def acquire(self) -> int:
        """A free slot; the pool never has more batches in flight than slots."""
        return self._free.pop()

    def release(self, slot: int) -> None:
        self._free.append(slot)

    def read(self, slot: int, tree: Tree) -> Tree:
        """The batch described by ``tree`` (from a worker), copied out of ``slot``.

        One copy per array into a fresh array the caller owns; the slot can be
        reused as soon as this returns.
        """
        assert self._shm is not None, "read() after close()"
        buf = self._shm.buf
        base = slot * self.slot_bytes

        def copy_out(leaf: Any) -> Any:
            if not isinstance(leaf, ShmLeaf):
                return leaf
            view = np.ndarray(leaf.shape, leaf.dtype, buffer=buf, offset=base + leaf.offset)
            return view.copy()

        return map_leaves(copy_out, tree)

    def close(self) -> None:
        """Unmap and unlink the segment; idempotent. Call after the workers are gone."""
        shm, self._shm = self._shm, None
        if shm is None:
            return
        with contextlib.suppress(BufferError):  # a view is still alive: it keeps the mapping
            shm.close()
        with contextlib.suppress(FileNotFoundError):
            shm.unlink()


def _reserve(name: str, size: int) -> None:
    # NOTE [ reserving /dev/shm up front ]
    # tmpfs allocates pages lazily: a segment that does not fit is created without
    # complaint and the worker dies with SIGBUS on its first write. posix_fallocate
    # claims the pages now, so a full /dev/shm is an error here, with a message.
    path = os.path.join(SHM_DIR, name.lstrip("/"))
    if size == 0 or not hasattr(os, "posix_fallocate") or not os.path.exists(path):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)


def _create(size: int) -> shared_memory.SharedMemory:
    name = f"{NAME_PREFIX}{os.getpid()}_{secrets.token_hex(6)}"
    return shared_memory.SharedMemory(name=name, create=True, size=size)


def data_segment(nbytes: int) -> shared_memory.SharedMemory:
    """An empty segment for one large array of the dataset (:mod:`feeders.workers._serialize`).

    Its pages are allocated as the array is written into it (with ``pwrite``,
    which reports a full ``/dev/shm`` as ENOSPC: :func:`shm_full`).

    Raises:
        SharedMemoryError: ``/dev/shm`` has less than ``nbytes`` free.
    """
    free = shm_free_bytes()
    if free is not None and nbytes > free:
        raise shm_full(nbytes)
    return _create(nbytes)


def shm_full(nbytes: int) -> SharedMemoryError:
    """The error for a dataset array that does not fit in ``/dev/shm``."""
    return SharedMemoryError(
        errno.ENOSPC,
        f"Worker processes share the dataset's large arrays through {SHM_DIR}, and one of "
        f"them needs {_mb(nbytes)}, but {SHM_DIR} has only {_mb(shm_free_bytes() or 0)} "
        f"free. Enlarge {SHM_DIR} (e.g. `docker run --shm-size=2g`), load the arrays "
        "lazily in __getitem__ (np.load(path, mmap_mode='r')), or pass "
        "use_multiprocessing=False to use threads.",
    )


def open_segment(name: str, flags: int) -> int:
    """A file descriptor on the parent's segment ``name``, for a worker to map.

    NOTE [ workers never touch a resource tracker ]
    ``SharedMemory(name)`` would register the segment with a resource tracker
    (Python < 3.13), and a worker started without the parent's tracker would
    start its own, which unlinks the segment when the worker exits. Workers
    only open and map; the parent creates, unlinks, and its tracker cleans up
    after a parent that was killed.
    """
    return int(_posixshmem.shm_open("/" + name.lstrip("/"), flags, mode=0o600))


def _too_small(slots: int, slot_bytes: int, free: int) -> SharedMemoryError:
    fitting = free // slot_bytes if slot_bytes else slots
    return SharedMemoryError(
        errno.ENOSPC,
        f"The worker pool's shared memory needs {_mb(slots * slot_bytes)} "
        f"(max_queue_size={slots} slots of {_mb(slot_bytes)}, sized from the first batch), "
        f"but {SHM_DIR} has only {_mb(free)} free. Lower max_queue_size "
        f"(max_queue_size={max(fitting, 1)} would fit) or the batch size, enlarge {SHM_DIR} "
        "(e.g. `docker run --shm-size=2g`), or pass use_multiprocessing=False to use threads.",
    )


class SlotWriter:
    """The worker's side: attach to the parent's segment and copy batches into slots."""

    def __init__(self) -> None:
        self._name: str | None = None
        self._map: mmap.mmap | None = None

    def write(self, name: str, slot: int, slot_bytes: int, batch: Tree) -> Tree | None:
        """Copy ``batch``'s arrays into ``slot``; the layout tree, or ``None`` if it does not fit."""
        leaves = flatten(batch)
        specs, needed = layout(leaves)
        if needed > slot_bytes:
            return None
        buf = self._attach(name, slot_bytes * (slot + 1))
        base = slot * slot_bytes
        for leaf, spec in zip(leaves, specs, strict=True):
            if spec is not None:
                target = np.ndarray(spec.shape, spec.dtype, buffer=buf, offset=base + spec.offset)
                np.copyto(target, leaf, casting="no")
        described = iter(
            [leaf if spec is None else spec for leaf, spec in zip(leaves, specs, strict=True)]
        )
        return map_leaves(lambda _: next(described), batch)

    def _attach(self, name: str, at_least: int) -> mmap.mmap:
        # NOTE [ workers never touch a resource tracker ]
        if self._name != name:
            self.close()
            fd = open_segment(name, os.O_RDWR)
            try:
                self._map = mmap.mmap(fd, os.fstat(fd).st_size)
            finally:
                os.close(fd)
            self._name = name
        assert self._map is not None and len(self._map) >= at_least
        return self._map

    def close(self) -> None:
        mapped, self._map, self._name = self._map, None, None
        if mapped is not None:
            with contextlib.suppress(BufferError):  # a batch view is still alive
                mapped.close()
