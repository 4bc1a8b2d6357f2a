"""How a dataset travels to worker processes: by value where it must, large arrays once.

Why its own module: two things decide whether ``use_multiprocessing=True``
works and what it costs, and both are about the bytes, not the processes.

- **By value where by reference cannot work.** ``pickle`` records a class as
  ``module.qualname``, which a worker cannot import when the class lives in a
  notebook cell, ``python -c``, ``python -`` (stdin), the REPL, or inside a
  function, nor for a lambda or closure held by the dataset. ``cloudpickle``
  (as joblib/loky and Ray use) records those by value and everything
  importable by reference, so workers never import the user's ``__main__``.
- **Large arrays once, through shared memory.** Pickle protocol 5 hands every
  contiguous array's memory to a callback instead of copying it into the
  stream. Buffers of at least :data:`BIG_BUFFER` bytes are copied once into a
  shared-memory segment of their own, and the stream (the "state") keeps only
  the rest. Each epoch the dataset is pickled again, which costs only the
  state, and each large buffer is compared with its segment (NOTE [ comparing
  large buffers ]): unchanged data is not sent again; a
  changed buffer of the same size is rewritten in its segment between epochs,
  when no batch is being built. Workers map the segments copy-on-write
  (``MAP_PRIVATE``), so they share the pages, a worker that writes to its
  arrays changes only its own copy, and a worker never registers anything
  with a resource tracker (the parent owns and unlinks every segment; its
  tracker unlinks them if the parent is killed).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import functools
import io
import mmap
import os
import pickle
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any

import cloudpickle
import numpy as np

from feeders.workers import _keras_lite
from feeders.workers.shm import data_segment, open_segment, shm_full

__all__ = ["BIG_BUFFER", "Shipment", "dumps", "load"]

BIG_BUFFER = 1 << 20  # buffers at least this big travel through shared memory
_CHUNK = 1 << 22  # compare 4 MB at a time: no large temporary, stops at the first change

Message = tuple[str, bytes, list[tuple[str, int]]]
"""``("dataset", state, [(segment name, nbytes), ...])``: what a worker loads."""


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]  # cloudpickle ships no types
    def reducer_override(self, obj: Any) -> Any:
        reduced = _keras_lite.reduce_keras_class(obj)
        return reduced if reduced is not None else super().reducer_override(obj)


def dumps(dataset: Any) -> tuple[bytes, list[pickle.PickleBuffer]]:
    """The dataset's state and its large buffers, or a TypeError that says how to fix it."""
    big: list[pickle.PickleBuffer] = []

    def out_of_band(buffer: pickle.PickleBuffer) -> bool:
        if buffer.raw().nbytes < BIG_BUFFER:
            return True  # small: in the stream
        big.append(buffer)
        return False

    stream = io.BytesIO()
    try:
        _Pickler(stream, protocol=5, buffer_callback=out_of_band).dump(dataset)
    except (pickle.PicklingError, TypeError, AttributeError) as err:
        cls = type(dataset)
        raise TypeError(
            "`dataset` must be picklable to run in worker processes (use_multiprocessing=True), "
            f"but got dataset of type {cls.__module__}.{cls.__qualname__}: pickling it failed: "
            f"{err}. Keep open files, locks, threads and generators out of its attributes "
            "(open them lazily in __getitem__), or pass use_multiprocessing=False to use threads."
        ) from err
    return stream.getvalue(), big


@dataclass
class _Segment:
    """One large buffer's shared-memory copy (the segment may be rounded up to a page)."""

    shm: shared_memory.SharedMemory
    nbytes: int

    @property
    def _buf(self) -> memoryview:
        buf = self.shm.buf
        assert buf is not None, "segment used after unlink()"
        return buf

    def write(self, raw: memoryview) -> None:
        """Copy ``raw`` in with ``pwrite``: one pass, and a full ``/dev/shm`` is ENOSPC, not SIGBUS."""
        fd = open_segment(self.shm.name, os.O_RDWR)
        try:
            done = 0
            while done < raw.nbytes:
                done += os.pwrite(fd, raw[done:], done)
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise
            raise shm_full(raw.nbytes) from err
        finally:
            os.close(fd)

    def holds(self, raw: memoryview) -> bool:
        """Whether the segment's bytes equal ``raw``'s (NOTE [ comparing large buffers ])."""
        shipped = np.frombuffer(self._buf, np.uint8, self.nbytes)
        current = np.frombuffer(raw, np.uint8)
        try:
            starts = range(0, self.nbytes, _CHUNK)
            same = _comparer().map(functools.partial(_equal, shipped, current), starts)
            return all(list(same))  # every chunk compared before the views are dropped
        finally:
            del shipped

    def unlink(self) -> None:
        with contextlib.suppress(BufferError):
            self.shm.close()
        with contextlib.suppress(FileNotFoundError):
            self.shm.unlink()


class Shipment:
    """The parent's record of what the workers hold, and the segments it owns.

    Not thread-safe; owned by :class:`feeders.workers._processes.ProcessWorkers`.
    """

    def __init__(self) -> None:
        self._state = b""
        self._segments: list[_Segment] = []

    def prepare(self, dataset: Any) -> bool:
        """Take ``dataset``'s current state; ``True`` when workers must be sent :meth:`message`.

        Call only while no worker is building a batch: a changed buffer is
        rewritten in its segment in place.

        Raises:
            TypeError: the dataset cannot be pickled.
            SharedMemoryError: ``/dev/shm`` cannot hold a large buffer.
        """
        state, buffers = dumps(dataset)
        changed = state != self._state or len(buffers) != len(self._segments)
        kept: list[_Segment] = []
        try:
            for number, buffer in enumerate(buffers):
                raw = buffer.raw()
                old = self._segments[number] if number < len(self._segments) else None
                if old is not None and old.nbytes == raw.nbytes:
                    if not old.holds(raw):
                        old.write(raw)
                        changed = True
                    kept.append(old)
                    continue
                kept.append(_Segment(data_segment(raw.nbytes), raw.nbytes))
                kept[-1].write(raw)
                changed = True
        except BaseException:
            _unlink_all(kept, keep=self._segments)  # the new ones; the shipped ones stay
            raise
        _unlink_all(self._segments, keep=kept)
        self._state, self._segments = state, kept
        return changed

    def message(self) -> Message:
        return "dataset", self._state, [(s.shm.name, s.nbytes) for s in self._segments]

    def close(self) -> None:
        """Unlink every segment; idempotent. Workers' mappings stay valid until they drop them."""
        segments, self._segments, self._state = self._segments, [], b""
        for segment in segments:
            segment.unlink()


# NOTE [ comparing large buffers ]
# An unchanged dataset must cost little per epoch, and an array changed in place
# (np.random.shuffle(self.x)) must be seen, so each large buffer is compared byte
# for byte with its segment: memory bandwidth, not hashing, is the limit. Chunks
# of 8-byte words are compared by a few threads (NumPy releases the GIL), about
# 30 ms for 300 MB on one core, less with more.
_pool: concurrent.futures.ThreadPoolExecutor | None = None


def _comparer() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    if _pool is None:
        workers = max(1, min(4, os.cpu_count() or 1))
        _pool = concurrent.futures.ThreadPoolExecutor(workers, "feeders-compare")
    return _pool


def _equal(a: np.ndarray, b: np.ndarray, at: int) -> bool:
    a, b = a[at : at + _CHUNK], b[at : at + _CHUNK]
    words = a.nbytes // 8 * 8
    return np.array_equal(a[:words].view(np.uint64), b[:words].view(np.uint64)) and (
        np.array_equal(a[words:], b[words:])
    )


def _unlink_all(segments: list[_Segment], *, keep: list[_Segment]) -> None:
    for segment in segments:
        if all(segment is not kept for kept in keep):
            segment.unlink()


def load(message: Message) -> Any:
    """In a worker: the dataset, its large arrays mapped copy-on-write from the segments."""
    _keras_lite.install()
    _, state, refs = message
    buffers = [_map_private(name, nbytes) for name, nbytes in refs]
    return pickle.loads(state, buffers=buffers)


def _map_private(name: str, nbytes: int) -> memoryview:
    fd = open_segment(name, os.O_RDONLY)
    try:
        mapped = mmap.mmap(
            fd, nbytes, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE
        )
    finally:
        os.close(fd)
    return memoryview(mapped)
