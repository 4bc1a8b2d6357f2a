"""What Keras accepts as "arrays" besides NumPy: pandas, scipy.sparse, torch, JAX and TF tensors.

Why a module of its own: each kind needs one conversion, done once when the
source is made, and none of their libraries may be imported to recognise them
(types are told by their module name). :func:`as_numpy` is called by the arrays
source on every leaf before ``np.asarray``:

- pandas ``DataFrame`` → its values, ``(n, columns)``; a ``Series`` → ``(n, 1)``,
  as Keras makes it (a column, not a vector).
- ``torch.Tensor`` → ``tensor.detach().cpu().numpy()`` (no copy for a CPU tensor);
  JAX arrays → ``np.asarray`` (no copy on the CPU; the view is read-only).
- ``scipy.sparse`` matrices and 2-D ``tf.SparseTensor`` → :class:`SparseRows`: the data
  stays sparse (CSR), and so does each batch of it.
- ``tf.RaggedTensor`` (one ragged dimension) → :class:`RaggedRows`: flat values and
  row splits, as NumPy; a batch of rows is a :class:`RaggedRows` too.

NOTE [ sparse and ragged batches ]: a batch leaf of these two kinds stays sparse or
ragged up to the hand-off (its ``ArraySpec.kind`` says which), where it becomes
what Keras hands that backend: on the TensorFlow path a ``tf.SparseTensor`` /
``tf.RaggedTensor`` (``to_tf()``); on JAX a sparse leaf is a ``BCOO``
(``to_jax()``); everything else gets it dense (``Feeder.epoch()``, torch, a ragged
leaf on JAX: ``dense()``, a ragged batch padded with zeros to its longest row, as
Keras pads it), so memory grows by one dense batch, not by the dense data. The
arrays source, generators, Sequences (their batches are checked by
:class:`feeders.structure.BatchChecker`) and the tf.data source's NumPy path share
these two classes; ``structure.composite_handoff`` is the one conversion.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _module(value: Any) -> str:
    return type(value).__module__ or ""


def is_array_like(value: Any) -> bool:
    """A leaf the arrays source takes (NumPy or one of this module's kinds), without importing them."""
    if hasattr(value, "__array__") and hasattr(value, "shape"):
        return not hasattr(value, "element_spec")  # a tf.data.Dataset is not an array
    module, name = _module(value), type(value).__name__
    if module.startswith("scipy.sparse"):
        return hasattr(value, "tocsr")
    return module.startswith("tensorflow") and name in ("SparseTensor", "RaggedTensor")


class SparseRows:
    """A 2-D sparse matrix kept as CSR; indexing rows gives a :class:`SparseRows`, ``dense()`` an array.

    Why: batches are rows, and CSR slices and gathers rows cheaply; only a
    batch is ever made dense.
    """

    def __init__(self, matrix: Any) -> None:
        self.matrix = matrix.tocsr()
        self.shape: tuple[int, ...] = tuple(self.matrix.shape)
        self.dtype = np.dtype(self.matrix.dtype)
        self.ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: Any) -> SparseRows:
        return SparseRows(self.matrix[rows])

    def dense(self) -> np.ndarray:
        return np.asarray(self.matrix.toarray())

    def astype(self, dtype: Any) -> SparseRows:
        return SparseRows(self.matrix.astype(dtype))

    def to_tf(self) -> Any:
        """These rows as a ``tf.SparseTensor`` (row-major indices, as TensorFlow orders them)."""
        import tensorflow as tf

        coo = self.matrix.tocoo()
        indices = np.stack([coo.row, coo.col], axis=1).astype(np.int64)
        return tf.sparse.reorder(tf.SparseTensor(indices, coo.data, self.shape))

    def to_jax(self) -> Any:
        """These rows as a ``jax.experimental.sparse.BCOO``, as Keras hands sparse data to JAX."""
        from jax.experimental import sparse as jax_sparse

        return jax_sparse.BCOO.from_scipy_sparse(self.matrix)

    @property
    def nbytes(self) -> int:
        return int(self.shape[1] * self.dtype.itemsize * self.shape[0])


class RaggedRows:
    """Rows of different lengths: flat ``values`` and ``row_splits`` (``tf.RaggedTensor``'s layout).

    Why NumPy: batches are gathered rows, which two vectorised index operations
    make; TensorFlow is needed only to hand a batch to a TF model (``to_tf()``).
    """

    def __init__(self, values: np.ndarray, row_splits: np.ndarray) -> None:
        self.values, self.row_splits = values, row_splits.astype(np.int64, copy=False)
        self.shape: tuple[int | None, ...] = (len(row_splits) - 1, None, *values.shape[1:])
        self.dtype = np.dtype(values.dtype)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return len(self.row_splits) - 1

    def __getitem__(self, rows: Any) -> RaggedRows:
        splits = self.row_splits
        if isinstance(rows, slice) and rows.step in (None, 1):
            start, stop, _ = rows.indices(len(self))
            stop = max(start, stop)
            lo, hi = splits[start], splits[stop]
            return RaggedRows(self.values[lo:hi], splits[start : stop + 1] - lo)
        rows = np.arange(len(self))[rows] if isinstance(rows, slice) else np.asarray(rows)
        starts, lengths = splits[rows], splits[rows + 1] - splits[rows]
        new_splits = np.concatenate([[0], np.cumsum(lengths)])
        within = np.arange(new_splits[-1]) - np.repeat(new_splits[:-1], lengths)
        return RaggedRows(self.values[np.repeat(starts, lengths) + within], new_splits)

    def dense(self) -> np.ndarray:
        """Rows padded with zeros to the longest one, as ``RaggedTensor.to_tensor()`` pads them."""
        lengths = np.diff(self.row_splits)
        out = np.zeros((len(self), int(lengths.max(initial=0)), *self.values.shape[1:]), self.dtype)
        rows = np.repeat(np.arange(len(self)), lengths)
        out[rows, np.arange(len(self.values)) - np.repeat(self.row_splits[:-1], lengths)] = (
            self.values
        )
        return out

    def astype(self, dtype: Any) -> RaggedRows:
        return RaggedRows(self.values.astype(dtype), self.row_splits)

    def to_tf(self) -> Any:
        import tensorflow as tf

        return tf.RaggedTensor.from_row_splits(self.values, self.row_splits, validate=False)

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes + self.row_splits.nbytes)


def dense(leaf: Any) -> Any:
    """A batch leaf as NumPy: :class:`SparseRows` and :class:`RaggedRows` made dense, anything else as it is."""
    return leaf.dense() if isinstance(leaf, SparseRows | RaggedRows) else leaf


def leaf_kind(leaf: Any) -> str:
    """``"sparse"``, ``"ragged"`` or ``"dense"``: the ``ArraySpec.kind`` of a leaf made by :func:`as_numpy`."""
    if isinstance(leaf, SparseRows):
        return "sparse"
    return "ragged" if isinstance(leaf, RaggedRows) else "dense"


def as_numpy(value: Any, name: str) -> Any:
    """``value`` as an ndarray (or :class:`SparseRows`); NumPy and unknown types pass through.

    Raises:
        TypeError: a sparse tensor that is not 2-D, or a ``tf.RaggedTensor`` with more
            than one ragged dimension.
    """
    module, kind = _module(value), type(value).__name__
    if module.startswith("pandas"):
        values = value.to_numpy()
        return values.reshape(-1, 1) if kind == "Series" else values
    if module.startswith("torch"):
        return value.detach().cpu().numpy()
    if module.startswith("scipy.sparse"):
        _check_2d(value.shape, name, kind)
        return SparseRows(value)
    if module.startswith("tensorflow") and kind == "RaggedTensor":
        if value.ragged_rank != 1:
            raise TypeError(
                f"`{name}` is a tf.RaggedTensor of shape {value.shape} with "
                f"ragged_rank={value.ragged_rank}; feeders batches ragged tensors with one "
                "ragged dimension (rows of different lengths). Merge the inner ragged "
                "dimensions (`x.merge_dims(1, -1)`), or pad them (`x.to_tensor()`)."
            )
        return RaggedRows(np.asarray(value.flat_values), np.asarray(value.row_splits))
    if module.startswith("tensorflow") and kind == "SparseTensor":
        _check_2d(tuple(value.shape), name, kind)
        return sparse_rows(value.indices, value.values, value.dense_shape)
    return value


def sparse_rows(indices: Any, values: Any, dense_shape: Any) -> SparseRows:
    """A 2-D ``tf.SparseTensor``'s components (indices, values, dense_shape) as :class:`SparseRows`."""
    from scipy import sparse

    indices = np.asarray(indices)
    coo = sparse.coo_matrix(
        (np.asarray(values), (indices[:, 0], indices[:, 1])),
        shape=tuple(int(d) for d in np.asarray(dense_shape)),
    )
    return SparseRows(coo)


def _check_2d(shape: tuple[Any, ...], name: str, kind: str) -> None:
    if len(shape) != 2:
        raise TypeError(
            f"`{name}` is a sparse {kind} of shape {shape}; feeders batches sparse matrices of "
            "shape (samples, features) only. Reshape it to 2-D, or densify it."
        )
