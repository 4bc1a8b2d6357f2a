"""Keras' ``PyDataset`` base class in worker processes, without importing Keras' backend.

Why: a worker unpickles the user's ``keras.utils.PyDataset`` subclass, and
importing the real Keras to get that base class imports its backend:
TensorFlow (about 6 s and 900 MB per worker) or, for the NumPy backend, JAX
(2 s, 370 MB). The base class itself is plain Python (``__init__`` storing three
attributes, their properties, ``num_batches``, ``on_epoch_*``), which a worker
never needs more of.

NOTE [ the worker's keras ]
Rule: until a dataset uses more of Keras than ``PyDataset``/``Sequence``, a
worker's ``keras`` and ``keras.utils`` are the stand-ins installed here, and
``keras.utils.PyDataset`` is :class:`PyDataset` below. The first use of anything
else (``keras.ops``, ``keras.layers``, ``keras.__version__`` ...) imports the
real Keras, with the backend the parent's environment names (``KERAS_BACKEND``),
and forwards to it. A class pickled by value (defined in ``__main__`` or a
notebook) has its base recorded as this stand-in by the parent
(:func:`reduce_keras_class`). So ``isinstance(obj, keras.utils.PyDataset)`` in a
worker means this class; datasets that import TensorFlow themselves (``tf.*``,
``tf.keras.utils.Sequence``) still do so.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

__all__ = ["PyDataset", "install", "reduce_keras_class"]

_NAMES = ("PyDataset", "Sequence")


class PyDataset:
    """The worker's ``keras.utils.PyDataset``: the attributes and defaults of Keras' own."""

    def __init__(
        self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10
    ) -> None:
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    @property
    def workers(self) -> int:
        return getattr(self, "_workers", 1)

    @property
    def use_multiprocessing(self) -> bool:
        return getattr(self, "_use_multiprocessing", False)

    @property
    def max_queue_size(self) -> int:
        return getattr(self, "_max_queue_size", 10)

    @property
    def num_batches(self) -> int | None:
        return len(self)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError

    def on_epoch_begin(self) -> None:
        pass

    def on_epoch_end(self) -> None:
        pass


def _py_dataset() -> type:
    """Unpickling target for Keras' ``PyDataset`` class object (see :func:`reduce_keras_class`)."""
    return PyDataset


def reduce_keras_class(obj: Any) -> tuple[Any, tuple[()]] | None:
    """For the parent's pickler: Keras' ``PyDataset`` class is recorded as this stand-in."""
    if not isinstance(obj, type) or obj.__name__ != "PyDataset":
        return None
    if not obj.__module__.startswith("keras."):
        return None
    return _py_dataset, ()


class _Lazy(types.ModuleType):
    """``keras`` or ``keras.utils`` until something beyond ``PyDataset`` is used."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name != "__version__":
            raise AttributeError(name)
        real = _real_keras()
        target = real.utils if self.__name__ == "keras.utils" else real
        return getattr(target, name)


def _real_keras() -> types.ModuleType:
    for name in ("keras", "keras.utils"):
        if isinstance(sys.modules.get(name), _Lazy):
            del sys.modules[name]
    return importlib.import_module("keras")


def install() -> None:
    """Put the stand-ins in ``sys.modules`` (in a worker, before it unpickles a dataset)."""
    if "keras" in sys.modules:
        return
    spec = importlib.util.find_spec("keras")
    if spec is None:  # no Keras here: nothing can refer to it
        return
    keras = _Lazy("keras")
    keras.__path__ = list(spec.submodule_search_locations or [])  # keras.src imports still work
    utils = _Lazy("keras.utils")
    for name in _NAMES:
        setattr(utils, name, PyDataset)
    keras.utils = utils  # type: ignore[attr-defined]
    sys.modules["keras"] = keras
    sys.modules["keras.utils"] = utils
