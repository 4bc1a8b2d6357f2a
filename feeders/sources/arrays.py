"""NumPy arrays (and lists/dicts of them) as a source.

Why it is shaped this way: the data is never copied as a whole. Each batch is a
view (in order) or a gather of ``batch_size`` rows (shuffled), cast to
``float32`` per batch when the array holds other floats, so the extra memory is
O(batch) plus one index permutation per epoch. ``split()`` makes views, too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from feeders.sources._checks import (
    Shuffle,
    check_batch_size,
    check_bool,
    check_shuffle,
    check_split,
    resolve_seed,
)
from feeders.sources.array_likes import RaggedRows, SparseRows, as_numpy, leaf_kind
from feeders.structure import (
    ArraySpec,
    Batch,
    BatchSpec,
    Tree,
    check_sample_weight_shape,
    check_weights,
    flatten,
    lists_to_tuples,
    packer,
    paths,
)

if TYPE_CHECKING:
    from feeders.service_graph import ServiceGraph

DEFAULT_BATCH_SIZE = 32
CHUNK_BYTES = 4 << 20  # bytes gathered per TF map call on the as_dataset() path
MAX_CHUNK_BATCHES = 32
FLOATX = np.dtype("float32")


class ArraySource:
    """Batches sliced from in-memory arrays, reshuffled per epoch from ``(seed, epoch)``.

    Args:
        x, y, sample_weight: arrays, or lists/dicts of arrays, all of one length.
        batch_size: samples per batch (default 32, as Keras).
        shuffle: a fresh permutation every epoch; ``"batch"``: Keras' batch-wise
            shuffle (the batches' order and the rows within each batch, so each
            batch reads one contiguous block: kinder to memory-mapped files).
        seed: makes the permutations reproducible; ``None`` draws one (see ``seed``).
        drop_remainder: drop the last partial batch.
    """

    def __init__(
        self,
        x: Tree,
        y: Tree | None = None,
        sample_weight: Tree | None = None,
        *,
        batch_size: int | None = None,
        shuffle: Shuffle = True,
        seed: int | None = None,
        drop_remainder: bool = False,
    ) -> None:
        parts = [
            _as_arrays(part, name)
            for part, name in ((x, "x"), (y, "y"), (sample_weight, "sample_weight"))
        ]
        self._parts: list[Tree | None] = parts
        self._leaves = [leaf for part in parts if part is not None for leaf in flatten(part)]
        self._packers = [None if part is None else packer(part) for part in parts]
        self._sizes = [0 if part is None else len(flatten(part)) for part in parts]
        self.num_samples = _common_length(parts)
        if parts[2] is not None:
            if parts[1] is None:
                raise ValueError("`sample_weight` needs targets, but y is None. Pass y as well.")
            check_sample_weight_shape(parts[2], parts[1])
            for leaf, where in zip(
                flatten(parts[2]), paths(parts[2], "sample_weight"), strict=True
            ):
                check_weights(leaf, where)
        self.batch_size = check_batch_size(DEFAULT_BATCH_SIZE if batch_size is None else batch_size)
        self.shuffle = check_shuffle(shuffle, batchwise=True)
        self.seed = resolve_seed(seed)
        self.drop_remainder = check_bool(drop_remainder, "drop_remainder")
        n_weights = self._sizes[2]
        self._tensors: tuple[Any, ...] | None = None
        self._casts = [
            FLOATX if _needs_cast(leaf, is_weight=i >= len(self._leaves) - n_weights) else None
            for i, leaf in enumerate(self._leaves)
        ]

    @property
    def num_batches(self) -> int:
        rounding = math.floor if self.drop_remainder else math.ceil
        return int(rounding(self.num_samples / self.batch_size))

    @property
    def targets(self) -> Tree | None:
        """``y``, for checking ``class_weight`` against every label up front."""
        return self._parts[1]

    @property
    def partial_batch_size(self) -> int | None:
        rest = self.num_samples % self.batch_size
        return rest if rest and not self.drop_remainder else None

    @property
    def spec(self) -> BatchSpec:
        fixed = self.partial_batch_size is None
        leaves = iter(
            ArraySpec(
                (self.batch_size if fixed else None, *leaf.shape[1:]),
                cast or leaf.dtype,
                leaf_kind(leaf),
            )
            for leaf, cast in zip(self._leaves, self._casts, strict=True)
        )
        return BatchSpec(
            *(
                None if pack is None else pack([next(leaves) for _ in range(size)])
                for pack, size in zip(self._packers, self._sizes, strict=True)
            )
        )

    def order(self, n: int) -> np.ndarray | None:
        """The sample order of epoch ``n`` (``None``: the natural order)."""
        return epoch_order(self.seed, n, self.num_samples, self.shuffle, self.batch_size)

    def epoch(self, n: int, start: int = 0) -> Iterator[Batch]:
        return self._batches(self.order(n), start)

    def epoch_in_order(self, n: int, start: int = 0, *, counts: bool = True) -> Iterator[Batch]:
        """Epoch ``n`` unshuffled (``predict``, ``evaluate``, ``fit(shuffle=False)``)."""
        return self._batches(None, start)

    def _batches(self, order: np.ndarray | None, start: int) -> Iterator[Batch]:
        size = self.batch_size
        for b in range(start, self.num_batches):
            lo, hi = b * size, min((b + 1) * size, self.num_samples)
            index: slice | np.ndarray = slice(lo, hi) if order is None else order[lo:hi]
            yield self._batch(index)

    def take(self, rows: np.ndarray) -> Batch:
        """The batch of ``rows``, in that order (a gather, as a shuffled batch is)."""
        return self._batch(rows)

    def shard(self, shard: Any) -> Any:
        """This source read as ``shard`` (NOTE [ the shard rule ] in :mod:`feeders.sharding`)."""
        from feeders.sharding import ShardedArrays

        return ShardedArrays(self, shard)

    def _batch(self, index: slice | np.ndarray) -> Batch:
        leaves = [
            leaf[index] if cast is None else leaf[index].astype(cast)
            for leaf, cast in zip(self._leaves, self._casts, strict=True)
        ]
        out: list[Tree | None] = []
        at = 0
        for pack, size in zip(self._packers, self._sizes, strict=True):
            out.append(None if pack is None else pack(leaves[at : at + size]))
            at += size
        return out[0], out[1], out[2]

    def as_dataset(self, claim_pass: Callable[[], tuple[int, int]], *, shuffle: bool = True) -> Any:
        """Batches gathered by TF ops from one TF copy of the arrays (``None`` for memmaps).

        Why: ``from_generator`` costs ~0.3 ms a batch in Python; a parallel
        ``tf.gather`` over index batches does not (the shape of Keras' own array
        path). Each gather fetches a *chunk* of batches (about 4 MB), which is
        then unbatched: per-element overhead, not copying, bounds this pipeline,
        and chunking divides it (~2× Keras' per-batch gather, measured in
        ``feeders/benchmarks/bench_arrays.py``). The price is one TF copy of the
        arrays, made on first use and kept, as Keras makes; memory-mapped arrays
        keep the zero-copy NumPy path. Sparse and ragged arrays are gathered batch by
        batch into ``tf.SparseTensor``/``tf.RaggedTensor`` batches (their CSR or row-split
        arrays are the TF copy). The order is the NumPy path's order, so
        both give identical batches (``shuffle=False``: the natural order). The
        pipeline's Python function holds no reference to this source, so the TF
        copy goes with the source (NOTE [ no strong reference from TF ]).
        """
        import tensorflow as tf

        # Sparse and ragged arrays are gathered by TF ops too, into tf.SparseTensor /
        # tf.RaggedTensor batches (NOTE [ sparse and ragged batches ]), as Keras gathers them.
        if any(isinstance(leaf, np.memmap) for leaf in self._leaves):
            return None
        if self._tensors is None:
            self._tensors = tuple(
                _to_tf(leaf if cast is None else leaf.astype(cast))
                for leaf, cast in zip(self._leaves, self._casts, strict=True)
            )
        size, total, remainder = self.batch_size, self.num_samples, self.partial_batch_size
        row_bytes = sum(leaf[:1].nbytes for leaf in self._leaves) or 1
        chunk = int(np.clip(CHUNK_BYTES // (row_bytes * size), 1, MAX_CHUNK_BATCHES))

        seed, mode = self.seed, self.shuffle if shuffle else False
        # Sparse and ragged gathers are by batch, as Keras gathers them (~2x from_generator,
        # measured side by side; slicing chunks of them is not worth it).
        widths = [leaf.shape[1] if isinstance(leaf, SparseRows) else None for leaf in self._leaves]
        by_batch = any(isinstance(leaf, SparseRows | RaggedRows) for leaf in self._leaves)

        def orders() -> Iterator[np.ndarray]:
            n, start = claim_pass()
            order = epoch_order(seed, n, total, mode, size)
            yield (np.arange(total) if order is None else order)[start * size :]

        def index_chunks(order: tf.Tensor) -> tf.data.Dataset:
            """Rows of ``chunk`` batches each, shape (batches, batch_size); the remainder last."""
            full = tf.shape(order)[0] // size
            chunks = tf.data.Dataset.from_tensor_slices(
                tf.reshape(order[: full * size], [full, size])
            )
            if not by_batch:
                chunks = chunks.batch(chunk)
            if remainder:
                rest = order[full * size :]
                chunks = chunks.concatenate(
                    tf.data.Dataset.from_tensors(rest if by_batch else rest[tf.newaxis])
                )
            return chunks

        def gather(index: tf.Tensor, tensors: tuple[Any, ...]) -> tuple[Tree, ...]:
            return self._packed(
                [_gather(t, index, width) for t, width in zip(tensors, widths, strict=True)]
            )

        dataset = tf.data.Dataset.from_generator(
            orders, output_signature=tf.TensorSpec((None,), tf.int64)
        )
        dataset = dataset.flat_map(index_chunks)
        dataset = tf.data.Dataset.zip(
            (dataset, tf.data.Dataset.from_tensors(self._tensors).repeat())
        )
        dataset = dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE)
        if not by_batch:
            # flat_map over slices measured ~2x faster than unbatch() here (TF 2.21).
            dataset = dataset.flat_map(lambda *parts: tf.data.Dataset.from_tensor_slices(parts))
        options = tf.data.Options()
        # As Keras does: the default rewrites serialise the graph (with the data) for no gain here.
        options.experimental_optimization.apply_default_optimizations = False
        return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)

    def service_fetch(self) -> Callable[[Any], tuple[Tree, ...]]:
        """``rows → (x, y[, sample_weight])`` as TF ops only, for a graph that ships.

        Why: tf.data service workers run a dataset graph and nothing else, so the arrays
        travel inside it as constants (mind TensorFlow's 2 GB graph limit) and
        :mod:`feeders.service_graph` decides the order. Same batch as ``_batch(rows)``.
        """
        import tensorflow as tf

        tensors = [
            _to_tf(leaf if cast is None else leaf.astype(cast), tf.constant)
            for leaf, cast in zip(self._leaves, self._casts, strict=True)
        ]
        widths = [leaf.shape[1] if isinstance(leaf, SparseRows) else None for leaf in self._leaves]

        def fetch(rows: Any) -> tuple[Tree, ...]:
            return self._packed(
                [_gather(t, rows, width) for t, width in zip(tensors, widths, strict=True)]
            )

        return fetch

    def service_graph(self, epoch: int, mode: str) -> ServiceGraph:
        """Epoch ``epoch``'s order cut into batches of rows for tf.data service workers.

        (:class:`~feeders.capabilities.Servable`; the order and re-mixing rules are
        NOTE [ service order ] in :mod:`feeders.service_graph`.)
        """
        from feeders.service_graph import Rows, rows_graph

        rows = Rows(
            self.num_samples,
            self.batch_size,
            self.order(epoch),
            bool(self.shuffle),
            self.drop_remainder,
            self.service_fetch(),
        )
        return rows_graph(rows, mode)

    def _packed(self, leaves: list[Any]) -> tuple[Tree, ...]:
        """The present parts (x, y[, sample_weight]) rebuilt from gathered TF leaves, lists as tuples."""
        out, at = [], 0
        for pack, n in zip(self._packers, self._sizes, strict=True):
            if pack is not None:
                out.append(lists_to_tuples(pack(leaves[at : at + n])))
            at += n
        return tuple(out)

    def split(self, at: int | float) -> tuple[ArraySource, ArraySource]:
        """The first samples for training and the last ``at`` (or fraction) for validation.

        Taken before any shuffling, as Keras' ``validation_split``; the
        validation part is not shuffled. Both are views of the same arrays.
        """
        cut = self.num_samples - check_split(at, self.num_samples)

        def part(rows: slice, shuffle: Shuffle) -> ArraySource:
            sliced = [
                None if p is None else packer(p)([leaf[rows] for leaf in flatten(p)])
                for p in self._parts
            ]
            return ArraySource(
                *sliced,
                batch_size=self.batch_size,
                shuffle=shuffle,
                seed=self.seed,
                drop_remainder=self.drop_remainder and shuffle is not False,
            )

        return part(slice(0, cut), self.shuffle), part(slice(cut, None), False)

    def close(self) -> None:
        """Nothing to release: the arrays belong to the caller."""


def from_arrays(
    x: Tree,
    y: Tree | None = None,
    *,
    sample_weight: Tree | None = None,
    batch_size: int | None = None,
    shuffle: Shuffle = True,
    seed: int | None = None,
    drop_remainder: bool = False,
) -> ArraySource:
    """Registry factory for the ``"arrays"`` kind (its arguments: its registry row)."""
    return ArraySource(
        x,
        y,
        sample_weight,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        drop_remainder=drop_remainder,
    )


def epoch_order(
    seed: int, n: int, total: int, shuffle: bool | str, batch_size: int
) -> np.ndarray | None:
    """The sample order of epoch ``n``, a function of ``(seed, n)`` only (``None``: natural).

    ``shuffle="batch"`` is Keras' batch-wise shuffle: whole batches change places
    and rows are shuffled within each; the partial batch stays last.
    """
    if not shuffle:
        return None
    rng = np.random.default_rng([seed, n])
    if shuffle != "batch":
        return rng.permutation(total)
    size, full = batch_size, total // batch_size
    blocks = rng.permutation(full)[:, None] * size
    within = rng.random((full, size)).argsort(axis=1)
    rest = full * size + rng.permutation(total - full * size)
    return np.concatenate([(blocks + within).ravel(), rest])


def _as_arrays(part: Tree | None, name: str) -> Tree | None:
    """NumPy views of every leaf (no copy for ndarrays); lists of scalars become one array."""
    if part is None:
        return None
    if isinstance(part, list) and part and np.isscalar(part[0]):
        return np.asarray(part)
    if isinstance(part, dict):
        return {key: _as_arrays(value, f"{name}[{key!r}]") for key, value in part.items()}
    if isinstance(part, list | tuple):
        return [_as_arrays(value, f"{name}[{i}]") for i, value in enumerate(part)]
    array = as_numpy(part, name)
    if isinstance(array, SparseRows | RaggedRows):
        return array
    array = np.asarray(array)
    if array.ndim == 0:
        raise ValueError(
            f"`{name}` must be an array with one row per sample, but got a scalar "
            f"(dtype {array.dtype}). Pass an array of shape (num_samples, ...)."
        )
    if array.dtype == object:
        raise TypeError(
            f"`{name}` has dtype object (shape {array.shape}); feeders needs numeric arrays. "
            "Convert with np.asarray(..., dtype=...) or pad ragged rows."
        )
    return array


def _to_tf(leaf: np.ndarray | SparseRows | RaggedRows, make: Any = None) -> Any:
    """A leaf as TF tensors; a ragged one as ``(values, row_splits)``, a sparse one as
    ``(column indices, values, row_splits)`` (its CSR arrays), which :func:`_gather` reads.

    Why in parts: a ``tf.RaggedTensor`` captured whole travels as a variant that every
    gather decodes again, the whole array each batch. ``make``: how an array becomes a
    tensor (``tf.convert_to_tensor``; ``tf.constant`` for a graph that ships).
    """
    import tensorflow as tf

    make = make or tf.convert_to_tensor
    if isinstance(leaf, RaggedRows):
        return make(leaf.values), make(leaf.row_splits)
    if isinstance(leaf, SparseRows):
        csr = leaf.matrix if leaf.matrix.has_sorted_indices else leaf.matrix.sorted_indices()
        return tuple(
            make(part)
            for part in (csr.indices.astype(np.int64), csr.data, csr.indptr.astype(np.int64))
        )
    return make(leaf)


def _gather(tensor: Any, rows: Any, width: int | None) -> Any:
    """Rows of a leaf made by :func:`_to_tf`: a tensor, a ``tf.RaggedTensor`` or a ``tf.SparseTensor``."""
    import tensorflow as tf

    if not isinstance(tensor, tuple):
        return tf.gather(tensor, rows)
    *flat, splits = tensor
    gathered = [
        tf.gather(tf.RaggedTensor.from_row_splits(part, splits, validate=False), rows)
        for part in flat
    ]
    if width is None:
        return gathered[0]
    columns, values = gathered
    indices = tf.stack([columns.value_rowids(), columns.flat_values], axis=1)
    shape = tf.stack([tf.size(rows, out_type=tf.int64), tf.constant(width, tf.int64)])
    return tf.SparseTensor(indices, values.flat_values, shape)  # static shape (None, width)


def _common_length(parts: list[Tree | None]) -> int:
    lengths = {
        where: len(leaf)
        for part, name in zip(parts, ("x", "y", "sample_weight"), strict=True)
        if part is not None
        for leaf, where in zip(flatten(part), paths(part, name), strict=True)
    }
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{where}: {n}" for where, n in lengths.items())
        raise ValueError(
            f"`x`, `y` and `sample_weight` must have the same number of samples, but got {shown}. "
            "Trim or align them so that row i of each is the same sample."
        )
    length = next(iter(lengths.values()))
    if length == 0:
        raise ValueError(
            f"`x` is empty (0 samples, shapes {[np.shape(leaf) for leaf in flatten(parts[0])]}). "
            "Pass at least one sample."
        )
    return length


def _needs_cast(leaf: np.ndarray, is_weight: bool) -> bool:
    """Floats (and every weight) travel as float32, as Keras casts them."""
    floating = is_weight or np.issubdtype(leaf.dtype, np.floating)
    return bool(floating and leaf.dtype != FLOATX)
