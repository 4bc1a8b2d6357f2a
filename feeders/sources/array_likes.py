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
  stays sparse (CSR); each batch's rows are densified when the batch is made, so
  memory grows by one dense batch, not by the dense matrix. Every backend gets a
  dense batch (Keras gives TensorFlow and JAX sparse batches; a model reading
  dense inputs trains the same on either).
- ``tf.RaggedTensor`` is refused: rows of different lengths have no array shape.
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

    def astype(self, dtype: Any) -> np.ndarray:
        return self.dense().astype(dtype, copy=False)

    @property
    def nbytes(self) -> int:
        return int(self.shape[1] * self.dtype.itemsize * self.shape[0])


def dense(leaf: Any) -> Any:
    """A batch leaf as NumPy: :class:`SparseRows` densified, anything else as it is."""
    return leaf.dense() if isinstance(leaf, SparseRows) else leaf


def as_numpy(value: Any, name: str) -> Any:
    """``value`` as an ndarray (or :class:`SparseRows`); NumPy and unknown types pass through.

    Raises:
        TypeError: a ``tf.RaggedTensor``, or a sparse tensor that is not 2-D.
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
        raise TypeError(
            f"`{name}` is a tf.RaggedTensor (shape {value.shape}): its rows have different "
            "lengths, so it has no array shape. Pad it (`.to_tensor()`), or batch it in a "
            "tf.data pipeline (`Dataset.from_tensor_slices(x).ragged_batch(n)`) and densify "
            "there."
        )
    if module.startswith("tensorflow") and kind == "SparseTensor":
        _check_2d(tuple(value.shape), name, kind)
        from scipy import sparse

        indices = np.asarray(value.indices)
        coo = sparse.coo_matrix(
            (np.asarray(value.values), (indices[:, 0], indices[:, 1])),
            shape=tuple(int(d) for d in value.dense_shape),
        )
        return SparseRows(coo)
    return value


def _check_2d(shape: tuple[Any, ...], name: str, kind: str) -> None:
    if len(shape) != 2:
        raise TypeError(
            f"`{name}` is a sparse {kind} of shape {shape}; feeders batches sparse matrices of "
            "shape (samples, features) only. Reshape it to 2-D, or densify it."
        )
