"""Array-likes Keras accepts as x/y: pandas, scipy.sparse, torch, JAX and TF tensors (any backend)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import feeders
from feeders.registry import find_source_kind
from feeders.sources.array_likes import SparseRows

X = np.arange(60, dtype=np.float32).reshape(20, 3)
Y = np.arange(20) % 3


def _batches(feeder: feeders.Feeder, n: int = 0) -> list[tuple]:
    return [(x, y) for x, y, _ in feeder.epoch(n)]


def _same(found: list[tuple], expected: list[tuple]) -> None:
    assert len(found) == len(expected)
    for (x, y), (ex, ey) in zip(found, expected, strict=True):
        np.testing.assert_array_equal(x, ex)
        np.testing.assert_array_equal(y, ey)
        assert (x.dtype, y.dtype) == (ex.dtype, ey.dtype)


def _fits(feeder: feeders.Feeder) -> None:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(feeder, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.predict(feeder, verbose=0).shape == (20, 3)


def test_pandas_frames_and_series_batch_as_keras_does() -> None:
    pd = pytest.importorskip("pandas")
    frame, labels = pd.DataFrame(X, columns=list("abc")), pd.Series(Y)
    feeder = feeders.adapt(frame, labels, batch_size=8, seed=0)
    expected = feeders.adapt(X, Y.reshape(-1, 1), batch_size=8, seed=0)
    _same(_batches(feeder), _batches(expected))  # a Series is a column, (n, 1)
    assert feeder.spec.y.shape == (None, 1)
    _fits(feeder)


def test_scipy_sparse_is_arrays_batched_dense_and_split_sparse() -> None:
    sparse = pytest.importorskip("scipy.sparse")
    matrix = sparse.csr_matrix(X * (X % 4 == 0))
    assert find_source_kind(matrix).name == "arrays"  # not mistaken for a Sequence
    feeder = feeders.adapt(matrix, Y, batch_size=8, seed=0)
    expected = feeders.adapt(matrix.toarray(), Y, batch_size=8, seed=0)
    _same(_batches(feeder, 1), _batches(expected, 1))
    train, val = feeder.split(0.25)
    assert isinstance(train.source._leaves[0], SparseRows)  # the split stays sparse
    _same(_batches(val), [(matrix.toarray()[15:], Y[15:])])
    _fits(feeder)


def test_sparse_tensors_of_higher_rank_are_refused() -> None:
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match=r"`x` is a sparse .* of shape \(20, 3, 1\)"):
        feeders.adapt(sparse.coo_array(np.zeros((20, 3, 1))), Y)


def test_torch_tensors_are_arrays() -> None:
    torch = pytest.importorskip("torch")
    x = torch.tensor(X, requires_grad=True)  # detached, not refused
    feeder = feeders.adapt(x, torch.tensor(Y), batch_size=8, seed=0)
    _same(_batches(feeder), _batches(feeders.adapt(X, Y, batch_size=8, seed=0)))
    _fits(feeder)


def test_jax_arrays_are_arrays() -> None:
    jnp = pytest.importorskip("jax.numpy")
    feeder = feeders.adapt(jnp.asarray(X), jnp.asarray(Y), batch_size=8, seed=0)
    expected = feeders.adapt(X, Y.astype(np.int32), batch_size=8, seed=0)  # JAX's default ints
    _same(_batches(feeder), _batches(expected))
    _fits(feeder)


def test_tf_sparse_tensors_are_arrays() -> None:
    tf = pytest.importorskip("tensorflow")
    dense = X * (X % 4 == 0)
    feeder = feeders.adapt(tf.sparse.from_dense(dense), Y, batch_size=8, seed=0)
    _same(_batches(feeder), _batches(feeders.adapt(dense, Y, batch_size=8, seed=0)))


def test_ragged_tensors_with_more_than_one_ragged_dimension_are_refused() -> None:
    tf = pytest.importorskip("tensorflow")
    nested = tf.ragged.constant([[[1.0], [2.0, 3.0]], [[4.0]]])
    with pytest.raises(
        TypeError, match=r"`x` is a tf.RaggedTensor of shape \(2, None, None\) with ragged_rank=2"
    ):
        feeders.adapt(nested, np.zeros(2))


def test_generator_batches_of_tensors_and_sparse_tensors_are_converted() -> None:
    tf = pytest.importorskip("tensorflow")
    torch = pytest.importorskip("torch")

    def batches():  # type: ignore[no-untyped-def]
        for i in range(0, 20, 8):
            yield tf.sparse.from_dense(X[i : i + 8]), torch.tensor(Y[i : i + 8])

    feeder = feeders.adapt(batches, shuffle=False, num_batches=3)
    _same(_batches(feeder), _batches(feeders.adapt(X, Y, batch_size=8, shuffle=False)))

    def ragged():  # type: ignore[no-untyped-def]
        yield tf.ragged.constant([[1.0], [2.0, 3.0]]), np.zeros(2)
        yield np.zeros((2, 3), np.float32), np.zeros(2)  # dense where batch 0 was ragged

    feeder = feeders.adapt(ragged, num_batches=2)
    with pytest.raises(
        ValueError,
        match=r"Batch 1 of the generator \(epoch 0\) changed x: it has a dense array where "
        r"batch 0 had a ragged one",
    ):
        list(feeder.epoch(0))
