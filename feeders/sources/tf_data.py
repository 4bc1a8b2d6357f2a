"""``tf.data`` pipelines as a source: the user's pipeline, kept in TensorFlow.

Why it is shaped this way: a ``tf.data`` pipeline already decides order,
parallelism and prefetching; this source only reads its structure, and for
``fit`` hands Keras the pipeline itself (``as_dataset``), wrapped so that each
pass is the next epoch of the feeder and starts where the feeder says. Batches
never visit Python on that path; ``epoch()`` gives the same batches as NumPy
(for ``feeders validate``, digests and tests).

Elements are ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``, each an
array or a tuple/dict of arrays. A pipeline is taken as batched unless
``batch_size`` is given, in which case its elements are samples and this source
batches them.

Shuffling: the pipeline shuffles as it likes, so by default this source keeps
its order, whatever ``shuffle`` says (as Keras does for datasets). With
``shuffle_buffer=n`` it shuffles the pipeline's elements itself, before
batching, with a buffer of ``n`` and a seed drawn from ``(seed, epoch)``: a new,
reproducible order every epoch (a buffer of at least the dataset's size gives a
uniform permutation).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from feeders._tf import require_tf
from feeders.sources._checks import check_batch_size, check_bool, check_split, resolve_seed
from feeders.sources.array_likes import sparse_rows
from feeders.structure import (
    ELEMENT_FORMS,
    ArraySpec,
    Batch,
    BatchSpec,
    Tree,
    flatten,
    map_tree,
    paths,
)

if TYPE_CHECKING:
    from feeders.service_graph import ServiceGraph


class TFDataSource:
    """Batches of a ``tf.data.Dataset``, epoch ``n`` being its ``n``-th iteration.

    Args:
        dataset: a ``tf.data.Dataset`` of batches, or of samples when
            ``batch_size`` is given.
        batch_size: batch the samples of ``dataset`` (``None``: it is batched).
        shuffle, seed, shuffle_buffer: see the module docstring.
        drop_remainder: with ``batch_size``, drop the last partial batch.
        cardinality: the number of elements when TensorFlow cannot tell (after
            ``filter``, ``from_generator``...); it is asserted while iterating.

    Raises:
        ValueError/TypeError: unsupported element structure or leaves, or an
            unbatched pipeline without ``batch_size`` (see each message).
    """

    process_shard: Any = None  # set by shard(): the data-parallel part this pipeline is

    def __init__(
        self,
        dataset: Any,
        *,
        batch_size: int | None = None,
        shuffle: bool = True,
        seed: int | None = None,
        drop_remainder: bool = False,
        shuffle_buffer: int | None = None,
        cardinality: int | None = None,
    ) -> None:
        import tensorflow as tf

        self.batch_size = None if batch_size is None else check_batch_size(batch_size)
        if drop_remainder and self.batch_size is None:
            raise ValueError(
                "`drop_remainder` applies when feeders batches the dataset, but batch_size is "
                "None. Pass batch_size=..., or use ds.batch(n, drop_remainder=True)."
            )
        if cardinality is not None:
            count = check_batch_size(cardinality, "cardinality")
            dataset = dataset.apply(tf.data.experimental.assert_cardinality(count))
        self.drop_remainder = check_bool(drop_remainder, "drop_remainder")
        self.shuffle_buffer = (
            None
            if shuffle_buffer is None or not check_bool(shuffle, "shuffle")
            else check_batch_size(shuffle_buffer, "shuffle_buffer")
        )
        self.seed = resolve_seed(seed)
        self._dataset = dataset
        self._arity = _arity(dataset.element_spec)
        specs = _leaf_specs(dataset.element_spec)
        self._structure = dataset.element_spec
        self._unbatched = self.batch_size is not None
        _check_batching(specs, _leaf_names(self._structure, self._arity), self._unbatched)
        self._leading = [None if self._unbatched else s.shape[0] for s in specs]
        self._cardinality = int(dataset.cardinality())
        self._finish = self._finisher()

    # -- the Source contract ---------------------------------------------------
    @property
    def num_batches(self) -> int | None:
        count = self._cardinality
        if count < 0:
            return None
        if self.batch_size is None:
            return count
        rounding = math.floor if self.drop_remainder else math.ceil
        return int(rounding(count / self.batch_size))

    @property
    def partial_batch_size(self) -> int | None:
        if self.batch_size is None or self.drop_remainder or self._cardinality < 0:
            return None
        return self._cardinality % self.batch_size or None

    @property
    def spec(self) -> BatchSpec:
        def leaf(spec: Any) -> ArraySpec:
            dims = tuple(spec.shape.as_list())
            inner = dims if self._unbatched else dims[1:]
            return ArraySpec((None, *inner), np.dtype(spec.dtype.as_numpy_dtype), _leaf_kind(spec))

        parts = [map_tree(leaf, part) for part in _parts(self._structure, self._arity)]
        return BatchSpec(*parts, *[None] * (3 - len(parts)))

    def epoch(self, n: int, start: int = 0) -> Iterator[Batch]:
        return self._numpy(n, start, shuffle=True)

    def epoch_in_order(self, n: int, start: int = 0, *, counts: bool = True) -> Iterator[Batch]:
        """Epoch ``n`` without feeders' ``shuffle_buffer`` (the pipeline's own order)."""
        return self._numpy(n, start, shuffle=False)

    def _numpy(self, n: int, start: int, *, shuffle: bool) -> Iterator[Batch]:
        names = _leaf_names(self._structure, self._arity)
        check = not self._unbatched and len(names) > 1
        sparse = importlib.util.find_spec("scipy") is not None and any(
            leaf.kind == "sparse" for part in self.spec.parts() for leaf in flatten(part)
        )
        dataset = densified(self.epoch_dataset(n, start, shuffle=shuffle), keep_sparse=sparse)
        # as_numpy_iterator() would make sparse batches dense: read those tensors by hand.
        elements = (
            (map_tree(_host_leaf, element) for element in dataset)
            if sparse
            else dataset.as_numpy_iterator()
        )
        for b, parts in enumerate(elements, start):
            if check:
                _check_rows(parts, names, b, n)
            x, y, sample_weight = (*parts, None, None)[:3]
            yield x, y, sample_weight

    def close(self) -> None:
        """Nothing to release: the pipeline belongs to the caller."""

    # -- the TensorFlow path ---------------------------------------------------
    def as_dataset(self, claim_pass: Callable[[], tuple[int, int]], *, shuffle: bool = True) -> Any:
        """Each iteration: ``claim_pass()`` once (in Python), then the pipeline's batches.

        The pass's ``(epoch, start)`` travels as a tensor into ``flat_map``: the
        cost is ~3 ms to start each pass (two functions to instantiate, one
        ``py_function`` call), nothing per batch; a final ``prefetch`` overlaps
        the pipeline with the training step.
        """
        import tensorflow as tf

        def epoch(_: Any) -> Any:
            at = tf.py_function(lambda: np.asarray(claim_pass(), dtype=np.int64), [], tf.int64)
            return self.epoch_dataset(at[0], at[1], shuffle=shuffle)

        batches = tf.data.Dataset.range(1).flat_map(tf.autograph.experimental.do_not_convert(epoch))
        # The pipeline's own options (threading, determinism...) govern the whole pass.
        return batches.prefetch(tf.data.AUTOTUNE).with_options(self._dataset.options())

    def epoch_dataset(self, n: Any, start: Any, *, shuffle: bool = True) -> Any:
        """Epoch ``n`` from batch ``start`` (ints or scalar tensors) as ``(x,)``/``(x, y)``/``(x, y, w)``."""
        import tensorflow as tf

        dataset = self._dataset
        if self.shuffle_buffer is not None and shuffle:
            dataset = _seeded_shuffle(dataset, self.shuffle_buffer, self.seed, n)
        if self.batch_size is not None:
            dataset = dataset.batch(self.batch_size, drop_remainder=self.drop_remainder)
        dataset = dataset.skip(tf.cast(start, tf.int64))
        return dataset if self._finish is None else dataset.map(self._finish)

    def service_graph(self, epoch: int, mode: str) -> ServiceGraph:
        """The pipeline itself, as epoch ``epoch`` (:class:`~feeders.capabilities.Servable`).

        :func:`feeders.service_graph.service_graph` refuses it if it calls Python.
        """
        from feeders.service_graph import ServiceGraph

        return ServiceGraph(self.epoch_dataset(epoch, 0), self.num_batches, self.batch_size)

    def _finisher(self) -> Callable[..., tuple[Tree, ...]] | None:
        """One map that makes every element a parts tuple and opens a static batch dimension.

        ``None`` when the pipeline's elements need neither (no map, no cost).
        """
        import tensorflow as tf

        reshape = self._arity == 0 or isinstance(self._structure, list)
        relax = any(dim is not None for dim in self._leading) or (
            self.batch_size is not None and self.drop_remainder
        )
        if not (reshape or relax):
            return None
        arity = self._arity

        def open_batch(t: Any) -> Any:
            if not isinstance(t, tf.Tensor):  # sparse and ragged batches keep their shape
                return t
            return tf.raw_ops.PlaceholderWithDefault(input=t, shape=[None, *t.shape[1:]])

        def finish(*element: Any) -> tuple[Tree, ...]:
            parts = _parts(element[0] if arity == 0 else element, arity)
            if not relax:
                return parts
            return tuple(map_tree(open_batch, part) for part in parts)

        return cast(
            Callable[..., tuple[Tree, ...]], tf.autograph.experimental.do_not_convert(finish)
        )

    # -- data-parallel shard ---------------------------------------------------
    def shard(self, shard: Any) -> TFDataSource:
        """This pipeline's ``shard`` op, padded to equal steps (:func:`feeders.sharding.tf_sharded_dataset`).

        The partition is fixed (TensorFlow's, of the pipeline's order);
        ``shuffle_buffer`` then shuffles within this process's part each epoch.
        """
        from feeders.sharding_tf import tf_sharded_dataset

        if self.drop_remainder:
            raise ValueError(
                "`drop_remainder=True` drops samples, but a sharded feeder trains every sample "
                "once (the last round is padded with masked elements). Remove drop_remainder."
            )
        dataset = tf_sharded_dataset(
            self._dataset,
            shard,
            arity=self._arity,
            total=self._cardinality,
            batch_size=self.batch_size,
        )
        source = TFDataSource(
            dataset,
            batch_size=self.batch_size,
            seed=self.seed,
            drop_remainder=self.drop_remainder,
            shuffle_buffer=self.shuffle_buffer,
        )
        source.process_shard = shard
        return source

    # -- validation split ------------------------------------------------------
    def split(self, at: int | float) -> tuple[TFDataSource, TFDataSource]:
        """The first elements for training, the last ``at`` (or fraction) for validation.

        By batches when the pipeline is batched, by samples when this source
        batches it; with ``take``/``skip``, so the pipeline must be finite, of
        known size (else pass ``cardinality=``) and yield the same order every
        iteration (split before any reshuffling ``shuffle``).
        """
        unit = "batches" if self.batch_size is None else "samples"
        total = self._cardinality
        if total < 0:
            what, fix = (
                ("infinite (it repeats)", "Split before .repeat()")
                if total == -1
                else ("of unknown size (e.g. after filter)", "State its size")
            )
            raise ValueError(
                f"`split` needs a finite dataset of known size, but this one is {what}. {fix}: "
                f"feeders.adapt(ds, cardinality=<number of {unit}>).split(...)."
            )
        cut = total - check_split(at, total, unit)
        self._check_stable_order()

        def part(dataset: Any, shuffle: bool) -> TFDataSource:
            return TFDataSource(
                dataset,
                batch_size=self.batch_size,
                shuffle=shuffle,
                seed=self.seed,
                drop_remainder=self.drop_remainder and shuffle,
                shuffle_buffer=self.shuffle_buffer,
            )

        return part(self._dataset.take(cut), True), part(self._dataset.skip(cut), False)

    def _check_stable_order(self) -> None:
        """Refuse to split a pipeline whose first elements change between iterations."""
        head = densified(self._dataset.take(1 if self.batch_size is None else 64))
        parts = _parts(self._structure, self._arity)
        compared = 1 if len(parts) > 1 else 0

        def first() -> list[np.ndarray]:
            return [
                np.asarray(leaf)
                for element in head.as_numpy_iterator()
                for leaf in flatten(_parts(element, self._arity)[compared])
            ]

        if not all(np.array_equal(a, b) for a, b in zip(first(), first(), strict=True)):
            raise ValueError(
                "`split` needs a dataset that yields the same elements in the same order on "
                "every iteration, but two iterations of this one start differently (it "
                "reshuffles, e.g. shuffle(...) with reshuffle_each_iteration=True). Split "
                "before shuffling: feeders.adapt(unshuffled_ds, batch_size=..., "
                "shuffle_buffer=...).split(...), or shuffle with reshuffle_each_iteration=False."
            )


def from_dataset(
    dataset: Any,
    y: Tree | None = None,
    *,
    sample_weight: Tree | None = None,
    batch_size: int | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    drop_remainder: bool = False,
    shuffle_buffer: int | None = None,
    cardinality: int | None = None,
) -> TFDataSource:
    """Registry factory for the ``"tf.data"`` kind.

    ``y`` and ``sample_weight`` are always ``None`` here: its registry row refuses
    them (the dataset's elements hold them).
    """
    require_tf("A tf.data.Dataset source")
    refuse_distributed(dataset)
    return TFDataSource(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        drop_remainder=drop_remainder,
        shuffle_buffer=shuffle_buffer,
        cardinality=cardinality,
    )


_PART_NAMES = ("x", "y", "sample_weight")


def _arity(structure: Any) -> int:
    """How many of ``(x, y, sample_weight)`` an element holds; ``0``: the element is ``x``."""
    if not isinstance(structure, tuple | list):
        return 0
    if not 1 <= len(structure) <= 3:
        raise ValueError(
            f"Dataset elements must be {ELEMENT_FORMS}, but got a {type(structure).__name__} of "
            f"{len(structure)} ({_describe(structure)}). Group several inputs "
            "into one tuple or dict, e.g. ds.map(lambda a, b, y: ((a, b), y))."
        )
    return len(structure)


def _parts(element: Any, arity: int) -> tuple[Any, ...]:
    return (element,) if arity == 0 else tuple(element)


def _leaf_names(structure: Any, arity: int) -> list[str]:
    """``x``, ``y[0]``, ``x['image']``...: each leaf named by its part of ``(x, y, sample_weight)``."""
    return [
        p for i, part in enumerate(_parts(structure, arity)) for p in paths(part, _PART_NAMES[i])
    ]


def _leaf_specs(structure: Any) -> list[Any]:
    import tensorflow as tf

    leaves = flatten(structure)
    kinds = (tf.TensorSpec, tf.SparseTensorSpec, tf.RaggedTensorSpec)
    for leaf, where in zip(leaves, paths(structure, "element"), strict=True):
        if not isinstance(leaf, kinds):
            raise TypeError(
                f"Dataset elements must hold tensors, sparse tensors or ragged tensors, but "
                f"{where} is a {type(leaf).__name__}. Map it to one of them in the pipeline, "
                "e.g. ds.map(lambda x, y: (tf.convert_to_tensor(x), y))."
            )
        if leaf.shape.rank is None:
            raise ValueError(
                f"Dataset elements need a known rank, but {where} has an unknown shape. "
                "Set it in the pipeline, e.g. ds.map(lambda x, y: (tf.ensure_shape(x, [None, 28, 28]), y))."
            )
    return leaves


def _leaf_kind(spec: Any) -> str:
    """``"sparse"``, ``"ragged"`` or ``"dense"``: how the TF path hands this leaf to Keras."""
    import tensorflow as tf

    if isinstance(spec, tf.SparseTensorSpec):
        return "sparse"
    return "ragged" if isinstance(spec, tf.RaggedTensorSpec) else "dense"


def densified(dataset: Any, *, keep_sparse: bool = False) -> Any:
    """``dataset`` with ragged leaves padded with zeros and sparse ones made dense, as Keras does.

    On the TensorFlow path (``as_dataset()``, the TF backend) a pipeline's
    ``tf.SparseTensor`` and ``tf.RaggedTensor`` components reach the model as they
    are, as Keras passes them (NOTE [ sparse and ragged batches ], in
    :mod:`feeders.sources.array_likes`). The NumPy path (``epoch()``,
    the JAX and torch backends) pads each ragged batch here, in the pipeline, with
    ``RaggedTensor.to_tensor()`` (zeros up to the batch's longest row, as Keras' own
    conversion does). ``keep_sparse``: 2-D sparse batches stay sparse, to become
    :class:`~feeders.sources.array_likes.SparseRows` (a ``BCOO`` on JAX, dense for
    torch and ``epoch()``: NOTE [ sparse and ragged batches ]); other sparse leaves
    are made dense (``tf.sparse.to_dense``). A dataset without them is returned as it is.
    """
    import tensorflow as tf

    structure = dataset.element_spec
    if all(_leaf_kind(spec) == "dense" for spec in flatten(structure)):
        return dataset

    def dense(t: Any) -> Any:
        if isinstance(t, tf.SparseTensor):
            return t if keep_sparse and t.shape.rank == 2 else tf.sparse.to_dense(t)
        return t.to_tensor() if isinstance(t, tf.RaggedTensor) else t

    if isinstance(structure, tuple):  # tf.data unpacks a tuple element into arguments
        return dataset.map(lambda *e: tuple(tf.nest.map_structure(dense, e)))
    return dataset.map(lambda e: tf.nest.map_structure(dense, e))


def _host_leaf(leaf: Any) -> Any:
    """An eager ``tf.SparseTensor`` as :class:`SparseRows`, a tensor as NumPy."""
    if type(leaf).__name__ == "SparseTensor":
        return sparse_rows(leaf.indices, leaf.values, leaf.dense_shape)
    return leaf.numpy()


def _check_batching(specs: list[Any], names: list[str], unbatched: bool) -> None:
    shapes = {w: tuple(spec.shape.as_list()) for spec, w in zip(specs, names, strict=True)}
    if unbatched:
        if all(spec.shape.rank > 0 and spec.shape[0] is None for spec in specs):
            raise ValueError(
                "`batch_size` batches a dataset of samples, but this dataset looks batched "
                f"already: every part has an open leading dimension ({shapes}). "
                "Drop batch_size, or ds.unbatch() first."
            )
        return
    scalars = [w for spec, w in zip(specs, names, strict=True) if spec.shape.rank == 0]
    if scalars:
        raise ValueError(
            f"A dataset of batches needs a batch dimension on every part, but {scalars} are "
            f"scalars ({shapes}): the dataset looks unbatched. Pass batch_size=..., or batch "
            "it (ds.batch(64))."
        )
    static = {
        w: spec.shape[0] for spec, w in zip(specs, names, strict=True) if spec.shape[0] is not None
    }
    if len(set(static.values())) > 1:
        raise ValueError(
            f"A batch's parts must have the same number of rows, but the dataset's batch sizes "
            f"are {static}. Batch x, y and sample_weight together (Dataset.zip, then .batch)."
        )


def _check_rows(parts: tuple[Any, ...], names: list[str], index: int, epoch: int) -> None:
    """Every leaf of a batch must have the same number of rows (NumPy path only).

    NOTE [ rows on the TF path ]: the TF path leaves this to Keras' own shape
    checks, because an assert on every batch costs a map per batch (~10% of an
    MNIST epoch); ``feeders validate`` and ``epoch()`` still catch it here.
    """
    rows = [len(leaf) for part in parts for leaf in flatten(part)]
    if len(set(rows)) > 1:
        raise ValueError(
            f"A batch's parts must have the same number of rows, but batch {index} of epoch "
            f"{epoch} has {dict(zip(names, rows, strict=True))}. Batch x, y and sample_weight "
            "together (Dataset.zip, then .batch)."
        )


def _seeded_shuffle(dataset: Any, buffer: int, seed: int, epoch: Any) -> Any:
    """``dataset.shuffle(buffer)`` seeded from ``(seed, epoch)`` only; ``epoch`` may be a tensor.

    Why the raw op: ``Dataset.shuffle(seed=<tensor>)`` mixes in TensorFlow's
    global seed and, when that is 0 (``keras.utils.set_random_seed(0)``),
    fails on a Python comparison of the tensor. The op takes both seeds as
    tensors, so the order depends on ``(seed, epoch)`` and nothing else.
    """
    import tensorflow as tf

    key = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    # Seeds (0, 0) would mean "nondeterministic" to the kernel, hence minval=1.
    seeds = tf.random.stateless_uniform([2], seed=key, minval=1, maxval=2**31 - 1, dtype=tf.int64)
    # The op's types are the dataset's encoded components (a sparse or ragged leaf is
    # one variant); `_flat_tensor_specs` is how tf.data itself lists them.
    specs = [
        flat for spec in tf.nest.flatten(dataset.element_spec) for flat in spec._flat_tensor_specs
    ]
    variant = tf.raw_ops.ShuffleDatasetV3(
        input_dataset=tf.data.experimental.to_variant(dataset),
        buffer_size=tf.constant(buffer, tf.int64),
        seed=seeds[0],
        seed2=seeds[1],
        seed_generator=tf.raw_ops.DummySeedGenerator(),
        output_types=[spec.dtype for spec in specs],
        output_shapes=[spec.shape for spec in specs],
        reshuffle_each_iteration=False,
    )
    return tf.data.experimental.from_variant(variant, dataset.element_spec)


def _describe(structure: Any) -> str:
    import tensorflow as tf

    def one(spec: Any) -> str:
        if isinstance(spec, tf.TensorSpec):
            return f"{tuple(spec.shape.as_list())} {spec.dtype.name}"
        return type(spec).__name__

    return ", ".join(
        f"{where}: {one(leaf)}"
        for leaf, where in zip(flatten(structure), paths(structure, "element"), strict=True)
    )


def refuse_distributed(dataset: Any) -> None:
    """Refuse a ``tf.distribute`` distributed dataset: its batches are already split per replica.

    Raises:
        TypeError: ``dataset`` came from ``strategy.experimental_distribute_dataset`` (or
            ``distribute_datasets_from_function``); the message says what to pass instead.
    """
    import tensorflow as tf

    if isinstance(dataset, tf.distribute.DistributedDataset):
        raise TypeError(
            f"`x` is a tf.distribute distributed dataset ({type(dataset).__name__}), whose "
            "batches are already split across replicas; feeders needs the dataset before "
            "distribution. Pass the tf.data.Dataset itself and call fit under "
            "strategy.scope(): Keras distributes a feeder's batches across the replicas."
        )
