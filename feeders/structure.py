"""What a batch is: ``(x, y, sample_weight)``, each an array, a list or a dict.

Why one module: Keras decides what a valid batch is in three places; here every
source, the weights module and the Keras glue ask this module instead. A part of
a batch is a *tree*: an array (one input/output), a list or tuple (by position)
or a dict (by model input/output name), possibly nested.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np

Tree: TypeAlias = Any
"""An ndarray, or a list/tuple/dict nesting of ndarrays."""

Batch: TypeAlias = tuple[Tree, Tree | None, Tree | None]
"""``(x, y, sample_weight)``; ``y`` and ``sample_weight`` may be ``None``."""

PARTS = ("x", "y", "sample_weight")


def flatten(tree: Tree) -> list[Any]:
    """Leaves of ``tree`` in a stable order (list order, then dict insertion order)."""
    if isinstance(tree, Mapping):
        return [leaf for value in tree.values() for leaf in flatten(value)]
    if isinstance(tree, list | tuple):
        return [leaf for value in tree for leaf in flatten(value)]
    return [tree]


def paths(tree: Tree, prefix: str) -> list[str]:
    """Readable names of the leaves, e.g. ``x['image']`` or ``y[1]``, for error messages."""
    if isinstance(tree, Mapping):
        return [p for key, value in tree.items() for p in paths(value, f"{prefix}[{key!r}]")]
    if isinstance(tree, list | tuple):
        return [p for i, value in enumerate(tree) for p in paths(value, f"{prefix}[{i}]")]
    return [prefix]


def packer(template: Tree) -> Callable[[Sequence[Any]], Tree]:
    """A function that rebuilds ``template``'s nesting from a flat list of leaves.

    Why a closure: the hot path rebuilds the same nesting for every batch, so the
    walk over the template is done once here instead of once per batch.
    """
    if isinstance(template, Mapping):
        keys = list(template)
        subs = [packer(template[k]) for k in keys]
        sizes = [len(flatten(template[k])) for k in keys]
        if all(size == 1 for size in sizes) and all(not _is_node(template[k]) for k in keys):
            return lambda leaves: dict(zip(keys, leaves, strict=True))
        return _nested(subs, sizes, lambda parts: dict(zip(keys, parts, strict=True)))
    if isinstance(template, list | tuple):
        kind = type(template) if type(template) in (list, tuple) else list
        subs = [packer(v) for v in template]
        sizes = [len(flatten(v)) for v in template]
        if all(not _is_node(v) for v in template):
            return lambda leaves: kind(leaves)
        return _nested(subs, sizes, kind)
    return lambda leaves: leaves[0]


def _is_node(tree: Tree) -> bool:
    return isinstance(tree, Mapping | list | tuple)


def _nested(
    subs: list[Callable[[Sequence[Any]], Tree]],
    sizes: list[int],
    build: Callable[[list[Tree]], Tree],
) -> Callable[[Sequence[Any]], Tree]:
    bounds = np.cumsum([0, *sizes]).tolist()

    def pack(leaves: Sequence[Any]) -> Tree:
        return build(
            [sub(leaves[a:b]) for sub, a, b in zip(subs, bounds[:-1], bounds[1:], strict=True)]
        )

    return pack


def map_tree(fn: Callable[[Any], Any], tree: Tree) -> Tree:
    """Apply ``fn`` to every leaf, keeping the nesting."""
    return packer(tree)([fn(leaf) for leaf in flatten(tree)])


@dataclass(frozen=True)
class ArraySpec:
    """Shape (batch dimension ``None``) and dtype of one leaf of a batch."""

    shape: tuple[int | None, ...]
    dtype: np.dtype[Any]

    def describe(self) -> str:
        dims = ", ".join("None" if d is None else str(d) for d in self.shape)
        return f"({dims}) {self.dtype}"


@dataclass(frozen=True)
class BatchSpec:
    """The structure, shapes and dtypes of every batch a feeder yields.

    Why it exists: ``as_dataset()`` needs an exact ``element_spec`` up front,
    and the generator source checks every batch against the first one.
    """

    x: Tree
    y: Tree | None = None
    sample_weight: Tree | None = None

    @classmethod
    def of(cls, batch: Batch) -> BatchSpec:
        """The spec of a concrete batch, with the batch dimension left open."""
        return cls(*(None if part is None else map_tree(_leaf_spec, part) for part in batch))

    def parts(self) -> tuple[Tree, ...]:
        """The non-``None`` parts, as Keras expects them: ``(x,)``, ``(x, y)`` or all three."""
        if self.sample_weight is not None:
            return (self.x, self.y, self.sample_weight)
        if self.y is not None:
            return (self.x, self.y)
        return (self.x,)

    def to_tf(self) -> Any:
        """The ``tf.data`` ``element_spec`` of ``as_dataset()``."""
        import tensorflow as tf

        def tensor_spec(spec: ArraySpec) -> tf.TensorSpec:
            return tf.TensorSpec(spec.shape, tf.as_dtype(spec.dtype))

        return tuple(lists_to_tuples(map_tree(tensor_spec, part)) for part in self.parts())


def lists_to_tuples(tree: Tree) -> Tree:
    """tf.data reads a list as one tensor to stack; outputs by position must be tuples."""
    if isinstance(tree, Mapping):
        return {key: lists_to_tuples(value) for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        return tuple(lists_to_tuples(value) for value in tree)
    return tree


def _leaf_spec(leaf: Any) -> ArraySpec:
    array = np.asarray(leaf)
    if array.ndim == 0:
        raise ValueError(
            "Every part of a batch needs a batch dimension, but got a scalar "
            f"(shape {array.shape}, dtype {array.dtype}). Return arrays of shape "
            "(batch_size, ...)."
        )
    return ArraySpec((None, *array.shape[1:]), array.dtype)


def check_names(tree: Tree, expected: Sequence[str], arg: str, kind: str) -> None:
    """Check a dict part's keys against the model's input or output names.

    Raises:
        ValueError: a key is unknown or a name has no key; the message lists both.
    """
    if not isinstance(tree, Mapping):
        return
    keys, names = set(tree), set(expected)
    unknown, missing = sorted(keys - names), sorted(names - keys)
    if unknown or missing:
        raise ValueError(
            f"`{arg}` keys must match the model's {kind} names {sorted(names)}, but got "
            f"keys {sorted(keys)} (unknown: {unknown}, missing: {missing}). "
            f"Rename the dict keys to the model's {kind} names."
        )
