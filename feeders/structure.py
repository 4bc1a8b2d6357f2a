"""What a batch is: ``(x, y, sample_weight)``, each an array, a list or a dict.

Why one module: Keras decides what a valid batch is in three places; here every
source, the weights module and the Keras glue ask this module instead. A part of
a batch is a *tree*: an array (one input/output), a list or tuple (by position)
or a dict (by model input/output name), possibly nested.

Sources that receive whole batches from user code (generators, Sequences and
their worker pool) read each one with :func:`unpack` and check it with a
:class:`BatchChecker` built from the first batch's :class:`BatchSpec`: every
batch, not only the first, so a batch that changes dtype, rank, structure or
holds bad weights fails naming its index, epoch and field.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

import numpy as np

from feeders.sources.array_likes import RaggedRows, SparseRows, as_numpy, dense, leaf_kind

Tree: TypeAlias = Any
"""An ndarray, or a list/tuple/dict nesting of ndarrays."""

Batch: TypeAlias = tuple[Tree, Tree | None, Tree | None]
"""``(x, y, sample_weight)``; ``y`` and ``sample_weight`` may be ``None``."""

PARTS = ("x", "y", "sample_weight")
ELEMENT_FORMS = "`x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`"


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
    """Shape (batch dimension ``None``), dtype and kind of one leaf of a batch.

    ``kind`` is ``"dense"`` (an array), or ``"sparse"``/``"ragged"`` for a leaf that
    reaches a TF model as a ``tf.SparseTensor``/``tf.RaggedTensor`` (NOTE [ sparse and
    ragged batches ], in :mod:`feeders.sources.array_likes`); its dense form has the
    same shape, a ragged dimension (``None``) padded per batch.
    """

    shape: tuple[int | None, ...]
    dtype: np.dtype[Any]
    kind: str = "dense"

    def describe(self) -> str:
        dims = ", ".join("None" if d is None else str(d) for d in self.shape)
        return f"({dims}) {self.dtype}" + ("" if self.kind == "dense" else f" {self.kind}")

    def to_tf(self) -> Any:
        """The ``tf.TypeSpec`` of this leaf on the TensorFlow path."""
        import tensorflow as tf

        dtype = tf.as_dtype(self.dtype)
        if self.kind == "sparse":
            return tf.SparseTensorSpec(self.shape, dtype)
        if self.kind == "ragged":
            ragged = max([1, *(i for i, d in enumerate(self.shape) if d is None)])
            return tf.RaggedTensorSpec(self.shape, dtype, ragged_rank=ragged)
        return tf.TensorSpec(self.shape, dtype)


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
        return tuple(lists_to_tuples(map_tree(ArraySpec.to_tf, part)) for part in self.parts())


def lists_to_tuples(tree: Tree) -> Tree:
    """tf.data reads a list as one tensor to stack; outputs by position must be tuples."""
    if isinstance(tree, Mapping):
        return {key: lists_to_tuples(value) for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        return tuple(lists_to_tuples(value) for value in tree)
    return tree


def _leaf_spec(leaf: Any) -> ArraySpec:
    if isinstance(leaf, SparseRows | RaggedRows):
        return ArraySpec((None, *leaf.shape[1:]), leaf.dtype, leaf_kind(leaf))
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


def check_weights(values: np.ndarray, arg: str, context: str = "") -> None:
    """Refuse negative, NaN or infinite weights (vectorised: two reductions when all is well).

    Raises:
        TypeError: the weights are not real numbers.
        ValueError: names ``arg``, counts the bad entries and shows the first one.
    """
    values = np.asarray(values)
    if values.dtype.kind not in "iuf":
        raise TypeError(
            f"`{arg}`{context} must hold real numbers, but got dtype {values.dtype} "
            f"(shape {values.shape}). Pass a float array."
        )
    if weights_ok(values):
        return
    bad = ~np.isfinite(values) | (values < 0)
    first = np.argwhere(bad)[0]
    raise ValueError(
        f"`{arg}`{context} must be finite and non-negative, but got {int(bad.sum())} bad "
        f"value(s) (shape {values.shape}; first at index {tuple(first.tolist())}: "
        f"{values[tuple(first)].item()!r}). Replace NaN/inf/negative weights, e.g. "
        "with np.nan_to_num(w).clip(0)."
    )


def weights_ok(values: np.ndarray) -> bool:
    """Whether real-number weights are all finite and non-negative: two reductions, no temporaries."""
    # NaN fails `min() >= 0`; +inf fails `isfinite(max())`.
    return not values.size or bool(
        np.minimum.reduce(values, axis=None) >= 0
        and np.isfinite(np.maximum.reduce(values, axis=None))
    )


def check_sample_weight_shape(sample_weight: Tree, y: Tree, arg: str = "sample_weight") -> None:
    """Each weight array must cover its output's leading dims (per sample or per timestep).

    Raises:
        ValueError: names the output and shows both shapes.
    """
    y_leaves = flatten(y)
    if not isinstance(sample_weight, list | tuple | dict):
        pairs = [
            (sample_weight, leaf, arg, where)
            for leaf, where in zip(y_leaves, paths(y, "y"), strict=True)
        ]
    else:
        sw_leaves = flatten(sample_weight)
        if len(sw_leaves) != len(y_leaves):
            raise ValueError(
                f"`{arg}` has {len(sw_leaves)} per-output arrays but y has {len(y_leaves)} "
                "outputs. Give one array per output, or one array shared by all."
            )
        if isinstance(sample_weight, dict) and isinstance(y, dict) and set(sample_weight) != set(y):
            raise ValueError(
                f"`{arg}` keys {sorted(sample_weight)} must match y's keys {sorted(y)}."
            )
        pairs = list(
            zip(sw_leaves, y_leaves, paths(sample_weight, arg), paths(y, "y"), strict=True)
        )
    for sw, target, sw_name, y_name in pairs:
        sw_shape, y_shape = np.shape(sw), np.shape(target)
        if len(sw_shape) == 0 or sw_shape != y_shape[: len(sw_shape)]:
            raise ValueError(
                f"`{sw_name}` must have shape (n,) or a prefix of its output's shape "
                f"{y_shape} (per sample or per timestep), but got shape {sw_shape} for "
                f"{y_name}. Give one weight per sample."
            )


# -- batches from user code: one unpacking, one check --------------------------
# NOTE [ one batch checker ]: generators, Sequences and the worker pool's
# results go through `unpack` + `BatchChecker`; arrays are checked once, whole,
# when adapted, and tf.data pipelines have a static element_spec. The check is on
# the hot path: it walks a structure compiled from the spec once, compares
# dtypes and shapes, and pays two reductions per sample-weight array.


def unpack(element: Any, describe: Callable[[], str]) -> tuple[Tree, ...]:
    """The parts of one batch as Keras reads them: ``x``, ``(x,)``, ``(x, y)``, ``(x, y, sample_weight)``.

    A list is read as a tuple and trailing ``None`` parts are dropped (``(x, y,
    None)`` is ``(x, y)``), as Keras does. ``describe()`` names the batch in errors.

    Raises:
        ValueError: a tuple of 0 or more than 3 parts.
    """
    if isinstance(element, list):
        element = tuple(element)
    if not isinstance(element, tuple):
        return (element,)
    while len(element) > 1 and element[-1] is None:
        element = element[:-1]
    if not 1 <= len(element) <= 3:
        raise ValueError(
            f"Batches must be {ELEMENT_FORMS}, but {describe()} is a tuple of {len(element)}. "
            "Group several inputs into one tuple or dict: return (x_tuple_or_dict, y)."
        )
    return cast(tuple[Any, ...], element)


def first_spec(element: Any, describe: Callable[[], str]) -> BatchSpec:
    """The spec of a source's first batch, which every later batch must match.

    Raises:
        TypeError: a leaf of dtype object (ragged rows, mixed types).
        ValueError: a ``None`` leaf or part, a scalar leaf, or sample weights
            whose shape does not fit the targets.
    """
    unpacked = unpack(element, describe)
    if len(unpacked) == 3 and unpacked[1] is None:
        raise ValueError(
            f"{_sentence(describe())} has sample_weight but y is None; weights need "
            "targets. Return (x, y, sample_weight)."
        )
    parts = [_arrays(part, name, describe) for part, name in zip(unpacked, PARTS, strict=False)]
    if len(parts) == 3:
        check_sample_weight_shape(parts[2], parts[1])
    return BatchSpec.of((*parts, None, None)[:3])


def _arrays(tree: Tree, where: str, describe: Callable[[], str]) -> Tree:
    if isinstance(tree, Mapping):
        return {k: _arrays(v, f"{where}[{k!r}]", describe) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_arrays(v, f"{where}[{i}]", describe) for i, v in enumerate(tree))
    if tree is None:
        raise ValueError(
            f"{_sentence(describe())} has {where} None. Every part of a batch must be an "
            "array (drop the part, or return a placeholder array)."
        )
    array = _as_array(tree, where)
    if array.dtype == object:
        raise TypeError(
            f"{_sentence(describe())} has {where} of dtype object (shape {array.shape}); "
            "batches must hold numeric arrays. Pad ragged rows or cast with "
            "np.asarray(..., dtype=...)."
        )
    return array


def _as_array(leaf: Any, where: str) -> Any:
    """A batch leaf as NumPy: torch/JAX/TF tensors and pandas converted; sparse and ragged
    ones as :class:`SparseRows` / :class:`RaggedRows` (NOTE [ sparse and ragged batches ]).

    (:mod:`feeders.sources.array_likes` says how each kind converts.)
    """
    if type(leaf) is np.ndarray:
        return leaf
    converted = as_numpy(leaf, where)
    return converted if isinstance(converted, SparseRows | RaggedRows) else np.asarray(converted)


def composite_handoff(spec: BatchSpec, *, to: str) -> Callable[[Tree], Tree] | None:
    """What turns a batch part's sparse and ragged leaves into what the consumer ``to`` takes.

    NOTE [ sparse and ragged batches ] (in :mod:`feeders.sources.array_likes`), as
    Keras hands them over: ``"tf"`` gets ``tf.SparseTensor`` / ``tf.RaggedTensor``,
    ``"jax"`` sparse leaves as ``jax.experimental.sparse.BCOO`` and ragged ones
    dense, ``"numpy"`` (``epoch()``, torch) dense arrays. ``None`` when ``spec`` has
    no such leaf (no cost per batch).
    """
    kinds = {leaf.kind for part in spec.parts() for leaf in flatten(part)}
    if kinds <= {"dense"}:
        return None

    def convert(leaf: Any) -> Any:
        if isinstance(leaf, SparseRows):
            return leaf.to_tf() if to == "tf" else leaf.to_jax() if to == "jax" else leaf.dense()
        if isinstance(leaf, RaggedRows):
            return leaf.to_tf() if to == "tf" else leaf.dense()
        return leaf

    return functools.partial(map_tree, convert)


class _Mismatch(Exception):
    """Raised by a compiled leaf check; :class:`BatchChecker` adds the batch's name."""

    def __init__(self, where: str, got: str, expected: str) -> None:
        super().__init__(where, got, expected)
        self.where, self.got, self.expected = where, got, expected


Walk: TypeAlias = Callable[[Any, list[tuple[str, int]]], Any]


class BatchChecker:
    """``check(element, index, epoch) -> (x, y, sample_weight)`` as NumPy, against ``spec``.

    Why compiled: the walk over the spec's structure is built once, as nested
    closures, so a batch pays only its own leaves' dtype and shape comparisons.

    Args:
        spec: the first batch's spec (:func:`first_spec`).
        name: ``name(index)`` names a batch in errors, e.g. ``"batch 3 of the generator"``.
        reference: how errors name the batch the spec came from, e.g. ``"batch 0"``.

    Raises (from ``check``):
        ValueError: a different number of parts, structure, dtype, rank or shape
            (apart from the batch dimension) than ``spec``; parts with different
            numbers of rows; NaN, infinite or negative sample weights.
    """

    def __init__(self, spec: BatchSpec, name: Callable[[int], str], reference: str) -> None:
        self._templates = spec.parts()
        self._walks = [_compile(t, part) for t, part in zip(self._templates, PARTS, strict=False)]
        self._name, self._reference = name, reference
        weights = spec.sample_weight
        self._weight_names = [] if weights is None else paths(weights, "sample_weight")

    def __call__(self, element: Any, index: int, epoch: int) -> Batch:
        def describe() -> str:
            return f"{self._name(index)} (epoch {epoch})"

        parts = unpack(element, describe)
        if len(parts) != len(self._walks):
            raise ValueError(
                f"{_sentence(describe())} has {len(parts)} parts but {self._reference} had "
                f"{len(self._walks)} ({', '.join(PARTS[: len(self._walks)])}). Every batch "
                "must have the same structure."
            )
        rows: list[tuple[str, int]] = []
        try:
            out = [walk(part, rows) for walk, part in zip(self._walks, parts, strict=True)]
        except _Mismatch as bad:
            raise ValueError(
                f"{_sentence(describe())} changed {bad.where}: it has {bad.got} where "
                f"{self._reference} had {bad.expected}. Every batch must have the structure, "
                "dtypes and shapes (apart from the batch size) of the first; cast or pad "
                "where the batches are made."
            ) from None
        if any(n != rows[0][1] for _, n in rows):
            raise ValueError(
                f"{_sentence(describe())} has parts with different batch sizes: "
                f"{dict(rows)}. Return x, y and sample_weight with one row per sample."
            )
        if len(out) == 3:
            for leaf, where in zip(flatten(out[2]), self._weight_names, strict=True):
                if leaf.dtype.kind not in "iuf" or not weights_ok(leaf):
                    check_weights(leaf, where, context=f" of {describe()}")
        x, y, sample_weight = (*out, None, None)[:3]
        return x, y, sample_weight


def _compile(template: Tree, where: str) -> Walk:
    """A function that checks a tree against ``template`` and returns it as NumPy."""
    if isinstance(template, ArraySpec):
        dtype, ndim, inner, spec_kind = (
            template.dtype,
            len(template.shape),
            template.shape[1:],
            template.kind,
        )
        dims = ", ".join("None" if d is None else str(d) for d in template.shape)
        expected_shape = f"shape ({dims})"
        open_dims = [i for i, d in enumerate(inner) if d is None]  # a ragged batch's own lengths

        def leaf(tree: Any, rows: list[tuple[str, int]]) -> Any:
            if type(tree) is np.ndarray and spec_kind == "dense":
                array = tree
            elif tree is None or isinstance(tree, Mapping | list | tuple):
                got = "None" if tree is None else f"a {type(tree).__name__}"
                raise _Mismatch(where, got, "an array")
            else:
                array = _as_array(tree, where)
                if spec_kind == "dense":
                    array = dense(array)
                elif leaf_kind(array) != spec_kind:
                    raise _Mismatch(where, f"a {leaf_kind(array)} array", f"a {spec_kind} one")
            if array.dtype != dtype:
                raise _Mismatch(where, f"dtype {array.dtype}", f"dtype {dtype}")
            shape = array.shape[1:]
            if open_dims:
                shape = tuple(None if i in open_dims else d for i, d in enumerate(shape))
            if array.ndim != ndim or shape != inner:
                raise _Mismatch(where, f"shape {array.shape}", expected_shape)
            rows.append((where, array.shape[0]))
            return array

        return leaf
    if isinstance(template, Mapping):
        keys = list(template)
        walks = {k: _compile(v, f"{where}[{k!r}]") for k, v in template.items()}

        def mapping(tree: Any, rows: list[tuple[str, int]]) -> dict[Any, Any]:
            if not isinstance(tree, Mapping) or tree.keys() != walks.keys():
                got = f"keys {sorted(tree)}" if isinstance(tree, Mapping) else _a(tree)
                raise _Mismatch(where, got, f"keys {sorted(keys)}")
            return {k: walks[k](tree[k], rows) for k in keys}

        return mapping
    kind, subs = type(template), [_compile(v, f"{where}[{i}]") for i, v in enumerate(template)]

    def sequence(tree: Any, rows: list[tuple[str, int]]) -> Any:
        if not isinstance(tree, list | tuple) or len(tree) != len(subs):
            got = (
                f"a {type(tree).__name__} of {len(tree)}"
                if isinstance(tree, list | tuple)
                else _a(tree)
            )
            raise _Mismatch(where, got, f"a {kind.__name__} of {len(subs)}")
        return kind(sub(value, rows) for sub, value in zip(subs, tree, strict=True))

    return sequence


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _a(tree: Any) -> str:
    return "None" if tree is None else f"a {type(tree).__name__}"
