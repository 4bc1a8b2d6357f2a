"""Which source kind handles a user's input: an ordered table, not an ``if/elif`` ladder.

Each row is ``(name, predicate, factory)`` plus what the kind accepts, as data:
the ``adapt()`` arguments it takes besides ``shuffle`` and ``seed``, its default
``shuffle``, and whether it supports Keras' ``shuffle="batch"``.
:func:`feeders.adapt` checks a call against the row once, with one wording, so
the factories need not each refuse what they do not use. The first row whose
predicate accepts the input wins. Users add rows with :func:`register_source` (placed first, so
they can override a built-in kind); packages add rows through the entry-point
group ``feeders.sources`` (each entry point names a :class:`SourceKind`).
Predicates avoid importing TensorFlow or PyTorch to recognise their types.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

ENTRY_POINT_GROUP = "feeders.sources"


@dataclass(frozen=True)
class SourceKind:
    """One row of the table.

    Args:
        name: shown in errors and ``feeders validate``.
        predicate: ``predicate(source) -> bool``, cheap, no heavy imports.
        factory: ``factory(source, y, *, sample_weight, batch_size, shuffle, seed,
            **accepted_options) -> Source``; may be a ``"module:function"``
            string so the module loads only when used.
        accepts: the ``adapt()`` arguments the kind takes besides ``shuffle``
            and ``seed`` (``y``, ``sample_weight``, ``batch_size`` and its own
            options); ``None`` passes every option to the factory, which decides.
        default_shuffle: what ``shuffle=None`` means for this kind.
        batchwise_shuffle: whether ``shuffle="batch"`` is supported.
        hint: the fix shown when an argument is given that the kind does not take.
    """

    name: str
    predicate: Callable[[Any], bool]
    factory: Callable[..., Any] | str
    accepts: frozenset[str] | None = None
    default_shuffle: bool = True
    batchwise_shuffle: bool = False
    hint: str = ""

    def make(self, source: Any, y: Any, **options: Any) -> Any:
        factory = self.factory
        if isinstance(factory, str):
            module, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module), attr)
        return factory(source, y, **options)


def _module_of(obj: Any) -> str:
    return type(obj).__module__ or ""


def is_arrays(obj: Any) -> bool:
    """NumPy arrays (or array-likes such as tensors), or a list/tuple/dict of them."""
    import numpy as np

    if isinstance(obj, np.ndarray):
        return True
    if isinstance(obj, dict):
        return bool(obj) and all(is_arrays(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return bool(obj) and all(is_arrays(v) for v in obj)
    from feeders.sources.array_likes import is_array_like

    return is_array_like(obj)


def is_tf_dataset(obj: Any) -> bool:
    """A ``tf.data.Dataset``, recognised without importing TensorFlow."""
    return _module_of(obj).startswith("tensorflow") and hasattr(obj, "element_spec")


def is_sequence(obj: Any) -> bool:
    """A ``keras.utils.Sequence``/``PyDataset``: ``__getitem__`` and ``__len__`` or ``num_batches``."""
    if isinstance(obj, str | bytes | list | tuple | dict):
        return False
    cls = type(obj)
    return hasattr(cls, "__getitem__") and (hasattr(cls, "__len__") or hasattr(cls, "num_batches"))


def is_generator(obj: Any) -> bool:
    """An iterator (single pass) or a callable returning one (a fresh pass per epoch)."""
    return hasattr(obj, "__next__") or (callable(obj) and not isinstance(obj, type))


def is_torch_dataloader(obj: Any) -> bool:
    """A ``torch.utils.data.DataLoader``, recognised without importing torch."""
    from feeders.sources.torch_data import is_torch_dataloader as check

    return check(obj)


def is_grain_dataset(obj: Any) -> bool:
    """A grain ``MapDataset``/``IterDataset``/``DataLoader``, recognised without importing grain."""
    from feeders.sources.grain_data import is_grain_dataset as check

    return check(obj)


_BUILTIN = [
    SourceKind(
        "arrays",
        is_arrays,
        "feeders.sources.arrays:from_arrays",
        accepts=frozenset({"y", "sample_weight", "batch_size", "drop_remainder"}),
        batchwise_shuffle=True,
    ),
    SourceKind(
        "tf.data",
        is_tf_dataset,
        "feeders.sources.tf_data:from_dataset",
        accepts=frozenset({"batch_size", "drop_remainder", "shuffle_buffer", "cardinality"}),
        hint="Put them in the dataset's elements, e.g. "
        "tf.data.Dataset.from_tensor_slices((x, y, sample_weight)).",
    ),
    SourceKind(
        "torch DataLoader",
        is_torch_dataloader,
        "feeders.sources.torch_data:from_dataloader",
        accepts=frozenset({"shuffle_buffer", "num_batches"}),
        hint="A DataLoader yields whole batches: return (x, y, sample_weight) from the "
        "dataset, and set batch_size on the DataLoader.",
    ),
    SourceKind(
        "grain",
        is_grain_dataset,
        "feeders.sources.grain_data:from_grain",
        accepts=frozenset({"shuffle_buffer", "num_batches"}),
        hint="Map grain elements to (x, y, sample_weight) and batch them in grain (ds.batch(n)).",
    ),
    SourceKind(
        "sequence",
        is_sequence,
        "feeders.sources.sequences:from_sequence",
        accepts=frozenset({"workers", "use_multiprocessing", "max_queue_size"}),
        default_shuffle=False,  # as Keras' PyDatasetAdapter; shuffle=True permutes batches
        hint="A Sequence returns whole batches: return (x, y, sample_weight) from "
        "__getitem__, batched as you want them.",
    ),
    SourceKind(
        "generator",
        is_generator,
        "feeders.sources.generators:from_generator",
        accepts=frozenset({"shuffle_buffer", "num_batches"}),
        hint="A generator yields whole batches: yield (x, y, sample_weight) of the size you want.",
    ),
]
_user: list[SourceKind] = []
_plugins: list[SourceKind] | None = None


def register_source(
    name: str,
    predicate: Callable[[Any], bool],
    factory: Callable[..., Any] | str,
    *,
    accepts: frozenset[str] | None = None,
    default_shuffle: bool = True,
) -> SourceKind:
    """Add a source kind ahead of the built-in ones (a later registration wins).

    ``accepts`` and ``default_shuffle``: see :class:`SourceKind`.

    Returns:
        The new row; pass it to :func:`unregister_source` to remove it.
    """
    if not callable(predicate):
        raise TypeError(f"`predicate` must be callable, but got {type(predicate).__name__}.")
    kind = SourceKind(name, predicate, factory, accepts=accepts, default_shuffle=default_shuffle)
    _user.insert(0, kind)
    return kind


def unregister_source(kind: SourceKind) -> None:
    """Remove a row added by :func:`register_source`."""
    _user.remove(kind)


def _load_plugins() -> list[SourceKind]:
    global _plugins
    if _plugins is None:
        found = []
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            kind = ep.load()
            if not isinstance(kind, SourceKind):
                raise TypeError(
                    f"Entry point {ep.name!r} in group {ENTRY_POINT_GROUP!r} must name a "
                    f"feeders.registry.SourceKind, but it gave {type(kind).__name__}."
                )
            found.append(kind)
        _plugins = found
    return _plugins


def source_kinds() -> list[SourceKind]:
    """Every row, in the order they are tried."""
    return [*_user, *_load_plugins(), *_BUILTIN]


def find_source_kind(source: Any) -> SourceKind:
    """The first row that accepts ``source``.

    Raises:
        TypeError: nothing accepts it; the message lists every supported kind.
    """
    for kind in source_kinds():
        if kind.predicate(source):
            return kind
    names = ", ".join(k.name for k in source_kinds())
    raise TypeError(
        f"`source` of type {type(source).__module__}.{type(source).__qualname__} is not "
        f"supported; supported kinds: {names}. Convert it (e.g. np.asarray) or add a kind "
        "with feeders.register_source(name, predicate, factory)."
    )
