"""``sample_weight`` and ``class_weight`` → one weight array per output.

Why one module: every source kind weights its batches the same way, so the rules
live here once. Unlike Keras, ``class_weight`` may be given per output
(``{output_name: {class: weight}}``) and may be combined with ``sample_weight``
(the two multiply). Labels may be sparse integers, one-hot rows, or per-timestep
targets; a missing class is an error, never a silent weight of 1, and for
in-memory targets it is found when the feeder is made
(:func:`check_class_weight_coverage`), not mid-training.

NOTE [ reading labels ]: as Keras reads them. A trailing axis of 1 is dropped;
then targets whose last axis is wider than 1 are one-hot rows (argmax), whatever
their dtype (float, integer or bool); others are class indices (whole numbers).
So per-timestep class indices have shape ``(n, timesteps, 1)`` (or are one-hot
per timestep, ``(n, timesteps, classes)``); an integer ``(n, k)`` array whose
rows are not one-hot is an error, never silently read either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np

from feeders.errors import TF_ASSERT_TAG
from feeders.structure import Tree, check_weights, flatten, packer, paths

FLOATX = np.float32


@dataclass(frozen=True)
class ClassWeightTable:
    """A dense lookup ``class index → weight``; NaN marks a class that has no weight."""

    table: np.ndarray
    arg: str

    @classmethod
    def build(cls, class_weight: Mapping[Any, Any], arg: str) -> ClassWeightTable:
        if not class_weight:
            raise ValueError(f"`{arg}` is empty. Pass {{class_index: weight}} or None.")
        keys = list(class_weight)
        if not all(isinstance(k, int | np.integer) and not isinstance(k, bool) for k in keys):
            raise TypeError(
                f"`{arg}` keys must be integer class indices, but got keys {keys[:5]}. "
                "Map class indices to weights, e.g. {0: 1.0, 1: 2.5}."
            )
        if min(keys) < 0:
            raise ValueError(f"`{arg}` keys must be >= 0, but got {min(keys)}.")
        values = np.asarray([class_weight[k] for k in keys], dtype=np.float64)
        check_weights(values, arg)
        table = np.full(int(max(keys)) + 1, np.nan, dtype=FLOATX)
        table[np.asarray(keys, dtype=np.int64)] = values
        return cls(table, arg)

    def lookup(self, y: np.ndarray, where: str) -> np.ndarray:
        """Weights for the labels in ``y`` (sparse, one-hot, or per timestep)."""
        labels = class_labels(y, self.arg, where)
        known = (labels >= 0) & (labels < len(self.table))
        weights = self.table[np.where(known, labels, 0)]
        missing = ~known | np.isnan(weights)
        if missing.any():
            absent = np.unique(labels[missing])[:10].tolist()
            raise ValueError(
                f"`{self.arg}` has no weight for class(es) {absent} found in {where}; "
                f"it covers classes {np.flatnonzero(~np.isnan(self.table)).tolist()[:20]}. "
                "Add a weight for every class that occurs in the labels."
            )
        return weights


def class_labels(y: np.ndarray, arg: str, where: str) -> np.ndarray:
    """Integer class labels from sparse, one-hot or per-timestep targets (NOTE [ reading labels ])."""
    y = np.asarray(y)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    elif y.ndim > 1:
        if not np.issubdtype(y.dtype, np.floating):
            _check_one_hot(y, arg, where)
        return cast(np.ndarray, np.argmax(y, axis=-1))
    if np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        return y.astype(np.int64, copy=False)
    if np.issubdtype(y.dtype, np.floating):
        labels = np.rint(y)
        if not np.array_equal(labels, y):
            raise ValueError(
                f"`{arg}` needs integer class labels, but {where} holds non-integer "
                f"floats (shape {y.shape}, dtype {y.dtype}). Use class indices or "
                "one-hot rows, or drop class_weight for regression targets."
            )
        return cast(np.ndarray, labels.astype(np.int64))
    raise TypeError(
        f"`{arg}` needs integer class labels, but {where} has dtype {y.dtype} "
        f"(shape {y.shape}). Encode the labels as class indices."
    )


def _check_one_hot(y: np.ndarray, arg: str, where: str) -> None:
    """Integer or bool targets wider than 1 must be one-hot rows (vectorised)."""
    if y.dtype != np.bool_ and not np.issubdtype(y.dtype, np.integer):
        raise TypeError(
            f"`{arg}` needs integer class labels, but {where} has dtype {y.dtype} "
            f"(shape {y.shape}). Encode the labels as class indices."
        )
    ones = y.astype(bool, copy=False)
    bad = (ones != y).any(axis=-1) | (ones.sum(axis=-1) != 1)
    if bad.any():
        first = tuple(np.argwhere(bad)[0].tolist())
        raise ValueError(
            f"`{arg}` reads {where} (shape {y.shape}, dtype {y.dtype}) as one-hot rows, as "
            f"Keras does for targets whose last axis is wider than 1, but row {first} is "
            f"{y[first].tolist()[:10]}. Pass one-hot rows, or per-timestep class indices "
            "with a trailing axis of 1: y[..., None]."
        )


class Weighting:
    """Turns ``(y, sample_weight)`` of a batch into per-output weights.

    Why a class: the class-weight tables are validated and built once, when the
    feeder is made; each batch then pays only vectorised lookups.

    Args:
        class_weight: ``{class: weight}`` for a single output, or
            ``{output_name: {class: weight}}`` / a list of such dicts for several.
        y_template: the structure of ``y`` (used to match outputs).
        output_names: names of list-structured outputs, when known (``bind``).
    """

    def __init__(
        self,
        class_weight: Mapping[Any, Any] | Sequence[Any] | None,
        y_template: Tree | None,
        output_names: Sequence[str] | None = None,
    ) -> None:
        self.active = class_weight is not None
        self._tables: list[ClassWeightTable | None] = []
        if class_weight is None:
            return
        if y_template is None:
            raise ValueError(
                "`class_weight` needs targets, but the feeder has no `y`. "
                "Pass labels (y) or drop class_weight."
            )
        leaves = flatten(y_template)
        names = _output_names(y_template, output_names)
        self._where = paths(y_template, "y")
        for leaf, where in zip(leaves, self._where, strict=True):
            kind = getattr(leaf, "kind", "dense")
            if kind != "dense":
                raise ValueError(
                    f"`class_weight` looks up each sample's class in dense targets, but "
                    f"{where} is {kind} (shape {leaf.shape}). Pass the labels as a dense "
                    "array, or weight the samples with sample_weight instead."
                )
        self._tables = _tables_per_output(class_weight, y_template, leaves, names)

    def __call__(self, y: Tree | None, sample_weight: Tree | None) -> Tree | None:
        """The batch's ``sample_weight`` with class weights multiplied in."""
        if not self.active:
            return sample_weight
        y_leaves = flatten(y)
        sw_leaves = per_output(sample_weight, len(y_leaves))
        out = []
        for table, labels, sw, where in zip(
            self._tables, y_leaves, sw_leaves, self._where, strict=True
        ):
            weights = None if table is None else table.lookup(labels, where)
            out.append(_multiply(weights, sw, len(labels)))
        return packer(y)(out)


@runtime_checkable
class HasTargets(Protocol):
    """A source that holds all its targets in memory (arrays), so labels can be checked up front."""

    @property
    def targets(self) -> Tree | None:
        """``y`` as the source holds it, or ``None`` without targets."""
        ...


def check_class_weight_coverage(
    class_weight: Mapping[Any, Any] | Sequence[Any] | None, source: Any
) -> None:
    """Weigh every in-memory label once, so a class ``class_weight`` misses fails now.

    Why here: otherwise it fails at the first batch holding that label, inside
    ``fit``. Sources without in-memory targets are checked batch by batch.

    Raises:
        ValueError: the class(es) missing, as :meth:`ClassWeightTable.lookup` says.
    """
    if class_weight is None or not isinstance(source, HasTargets):
        return
    targets = source.targets
    if targets is not None:
        Weighting(class_weight, targets)(targets, None)


def per_output(sample_weight: Tree | None, outputs: int) -> list[Any]:
    """One weight leaf per output: a shared array (or None) repeated, or the per-output leaves."""
    if sample_weight is None or not isinstance(sample_weight, list | tuple | dict):
        return [sample_weight] * outputs
    return flatten(sample_weight)


def _output_names(y: Tree, output_names: Sequence[str] | None) -> list[str | None]:
    if isinstance(y, Mapping):
        return list(y)
    if isinstance(y, list | tuple):
        names: list[str | None] = list(output_names or [])
        return names + [None] * (len(y) - len(names))
    return [None]


def _tables_per_output(
    class_weight: Mapping[Any, Any] | Sequence[Any],
    y: Tree,
    leaves: list[Any],
    names: list[str | None],
) -> list[ClassWeightTable | None]:
    if isinstance(class_weight, Sequence) and not isinstance(class_weight, str):
        if len(class_weight) != len(leaves):
            raise ValueError(
                f"`class_weight` given as a list needs one entry per output ({len(leaves)}), "
                f"but got {len(class_weight)}. Use None for outputs without class weights."
            )
        return [
            None if cw is None else ClassWeightTable.build(cw, f"class_weight[{i}]")
            for i, cw in enumerate(class_weight)
        ]
    if not isinstance(class_weight, Mapping):
        raise TypeError(
            "`class_weight` must be a dict {class: weight}, {output_name: {class: weight}} "
            f"or a list of dicts, but got {type(class_weight).__name__}."
        )
    if not class_weight:
        raise ValueError(
            "`class_weight` must give a weight for every class in the labels, but got "
            "class_weight={} (no classes). Pass {class_index: weight, ...}, or "
            "class_weight=None for no class weights."
        )
    if all(isinstance(k, str) for k in class_weight):
        unknown = sorted(set(class_weight) - {n for n in names if n is not None})
        if unknown:
            raise ValueError(
                f"`class_weight` names output(s) {unknown} that the targets do not have; "
                f"valid output names are {[n for n in names if n is not None]}. Key "
                "class_weight by output name (dict targets, or a model bound with bind())."
            )
        return [
            None
            if name not in class_weight
            else ClassWeightTable.build(class_weight[name], f"class_weight[{name!r}]")
            for name in names
        ]
    if len(leaves) != 1:
        raise ValueError(
            f"`class_weight` as {{class: weight}} applies to a single output, but y has "
            f"{len(leaves)} outputs. Key it by output name: "
            "{'output_name': {class: weight}}."
        )
    return [ClassWeightTable.build(class_weight, "class_weight")]


def _multiply(class_w: np.ndarray | None, sample_w: Any, n: int) -> np.ndarray:
    if sample_w is None:
        return np.ones(n, dtype=FLOATX) if class_w is None else class_w
    sample_w = np.asarray(sample_w, dtype=FLOATX)
    if class_w is None:
        return cast(np.ndarray, sample_w)
    if class_w.ndim > sample_w.ndim:
        sample_w = sample_w.reshape(sample_w.shape + (1,) * (class_w.ndim - sample_w.ndim))
    return np.asarray(class_w * sample_w, dtype=FLOATX)


# -- the same rules as TensorFlow ops ------------------------------------------
# NOTE [ TF weighting ]: a tf.data pipeline is weighted inside the pipeline, so
# its batches never leave the graph. The rules and tables are the ones above
# (`Weighting`, `ClassWeightTable.table`, `class_labels`, `_multiply`); only the
# arithmetic is written again, as ops. A missing class or non-integer float
# labels fail the pipeline with `tf.errors.InvalidArgumentError` carrying the
# same message as the NumPy path's ValueError.


def tf_weighting(weighting: Weighting) -> Callable[..., tuple[Any, ...]] | None:
    """A ``tf.data`` map function ``(x, y[, sample_weight]) -> (x, y, weights)``.

    Returns:
        ``None`` when ``weighting`` adds nothing (no ``class_weight``), so the
        pipeline needs no map at all.
    """
    if not weighting.active:
        return None
    import tensorflow as tf

    tables = [None if t is None else (tf.constant(t.table), t) for t in weighting._tables]
    where = weighting._where

    def weigh(x: Tree, y: Tree, sample_weight: Tree | None = None) -> tuple[Tree, Tree, Tree]:
        y_leaves = flatten(y)
        sw_leaves = per_output(sample_weight, len(y_leaves))
        out = []
        for table, labels, sw, name in zip(tables, y_leaves, sw_leaves, where, strict=True):
            class_w = None if table is None else tf_lookup(*table, labels, name)
            out.append(_tf_multiply(class_w, sw, labels))
        return x, y, packer(y)(out)

    return cast(Callable[..., tuple[Any, ...]], tf.autograph.experimental.do_not_convert(weigh))


def tf_lookup(table: Any, spec: ClassWeightTable, y: Any, where: str) -> Any:
    """``ClassWeightTable.lookup`` as ops: ``tf.gather`` over the same dense table."""
    import tensorflow as tf

    labels = tf_class_labels(y, spec.arg, where)
    known = (labels >= 0) & (labels < len(spec.table))
    weights = tf.gather(table, tf.where(known, labels, tf.zeros_like(labels)))
    missing = ~known | tf.math.is_nan(weights)
    covered = np.flatnonzero(~np.isnan(spec.table)).tolist()[:20]
    check = tf.debugging.Assert(
        ~tf.reduce_any(missing),
        [
            f"{TF_ASSERT_TAG}`{spec.arg}` has no weight for class(es) found in {where}; it covers classes "
            f"{covered}. Add a weight for every class that occurs in the labels. Missing:",
            tf.unique(tf.boolean_mask(labels, missing)).y,
        ],
        summarize=10,
    )
    with tf.control_dependencies([check]):
        return tf.identity(weights)


def tf_class_labels(y: Any, arg: str, where: str) -> Any:
    """``class_labels`` as ops; the label layout is read from the static shape and dtype."""
    import tensorflow as tf

    rank = y.shape.rank
    if rank is None or (rank > 1 and y.shape[-1] is None):
        raise ValueError(
            f"`{arg}` needs the rank and last dimension of {where} to be known, but got "
            f"shape {y.shape}. Set them in the pipeline, e.g. with tf.ensure_shape."
        )
    if rank > 1 and y.shape[-1] == 1:
        y = tf.squeeze(y, axis=-1)
    elif rank > 1:
        if y.dtype.is_floating:
            return tf.argmax(y, axis=-1)
        if not (y.dtype.is_integer or y.dtype == tf.bool):
            raise TypeError(
                f"`{arg}` needs integer class labels, but {where} has dtype {y.dtype.name} "
                f"(shape {y.shape}). Encode the labels as class indices."
            )
        counts = tf.cast(y, tf.int64)
        one_hot = tf.reduce_all((counts == 0) | (counts == 1)) & tf.reduce_all(
            tf.reduce_sum(counts, axis=-1) == 1
        )
        check = tf.debugging.Assert(
            one_hot,
            [
                f"`{arg}` reads {where} (shape {y.shape}, dtype {y.dtype.name}) as one-hot rows, "
                "as Keras does for targets whose last axis is wider than 1, but a row is not "
                "one-hot. Pass one-hot rows, or per-timestep class indices with a trailing "
                "axis of 1: y[..., None]."
            ],
        )
        with tf.control_dependencies([check]):
            return tf.argmax(counts, axis=-1)
    if y.dtype.is_integer or y.dtype == tf.bool:
        return tf.cast(y, tf.int64)
    if y.dtype.is_floating:
        labels = tf.round(y)
        check = tf.debugging.Assert(
            tf.reduce_all(tf.equal(labels, y)),
            [
                f"{TF_ASSERT_TAG}`{arg}` needs integer class labels, but {where} holds non-integer "
                f"floats (shape {y.shape}, dtype {y.dtype.name}). Use class indices or one-hot rows, "
                "or drop class_weight for regression targets."
            ],
        )
        with tf.control_dependencies([check]):
            return tf.cast(labels, tf.int64)
    raise TypeError(
        f"`{arg}` needs integer class labels, but {where} has dtype {y.dtype.name} "
        f"(shape {y.shape}). Encode the labels as class indices."
    )


def _tf_multiply(class_w: Any, sample_w: Any, labels: Any) -> Any:
    """``_multiply`` as ops: float32, per-sample weights broadcast over timesteps."""
    import tensorflow as tf

    if sample_w is None:
        return tf.ones(tf.shape(labels)[:1], tf.float32) if class_w is None else class_w
    sample_w = tf.cast(sample_w, tf.float32)
    if class_w is None:
        return sample_w
    extra = class_w.shape.rank - sample_w.shape.rank
    if extra > 0:
        ones = tf.ones([extra], tf.int32)
        sample_w = tf.reshape(sample_w, tf.concat([tf.shape(sample_w), ones], 0))
    return class_w * sample_w
