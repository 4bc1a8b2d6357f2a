"""tf.SparseTensor / tf.RaggedTensor (and scipy.sparse) inputs, through fit and predict on every backend.

What Keras 3.15 does, and feeders matches (NOTE [ sparse and ragged batches ] in
:mod:`feeders.sources.array_likes`): on TensorFlow a model whose input takes them
(``keras.Input(sparse=True)`` / ``ragged=True``) receives sparse and ragged
tensors as they are, from the tf.data, generator and arrays sources alike; JAX
receives sparse batches as ``BCOO`` and ragged ones dense; torch receives dense
batches; a ragged batch is padded with zeros to its longest row. Each backend runs in its own process
(``tests/scripts/sparse_ragged_batches.py``, side by side); backends that are not
installed are skipped.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any

import pytest

from tests.backend_runs import ROOT, run_per_backend

SCRIPT = ROOT / "tests" / "scripts" / "sparse_ragged_batches.py"
BACKENDS = [name for name in ("tensorflow", "jax", "torch") if importlib.util.find_spec(name)]
# What the model's first layer receives, per case, on (tensorflow, jax, torch), as Keras
# hands it: sparse is tf.SparseTensor on TF and a BCOO on JAX; ragged is tf.RaggedTensor.
SPARSE = {"tensorflow": "sparse", "jax": "sparse", "torch": "dense"}
RAGGED = {"tensorflow": "ragged", "jax": "dense", "torch": "dense"}
RECEIVED = {
    "tf.data-sparse": SPARSE,
    "tf.data-ragged": RAGGED,
    "generator-tf-sparse": SPARSE,
    "generator-scipy": SPARSE,
    "generator-ragged": RAGGED,
    "arrays-tf-sparse": SPARSE,
    "arrays-ragged": RAGGED,
}


@pytest.fixture(scope="module")
def logs() -> dict[str, Any]:
    outputs = run_per_backend(BACKENDS, lambda backend: [sys.executable, str(SCRIPT), *RECEIVED])
    found = {backend: json.loads(out) for backend, out in outputs.items()}
    return found


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
@pytest.mark.parametrize("case", list(RECEIVED))
def test_the_model_receives_what_keras_would_give_it(
    logs: dict[str, Any], backend: str, case: str
) -> None:
    if backend not in logs:
        pytest.skip(f"{backend} is not installed")
    assert logs[backend]["backend"] == backend
    run = logs[backend]["cases"][case]
    kind = RECEIVED[case][backend]
    for step in ("fit", "predict"):
        assert [entry[0] for entry in run[step]] == [kind, kind]
        # Exact contents, in order: the epoch's NumPy batches (ragged rows zero-padded).
        assert [entry[1] for entry in run[step]] == run["expected"]
    assert run["predictions"] == 8


ROWS = [[1.0, 2.0], [3.0], [4.0, 5.0, 6.0], [7.0], [1.0], [2.0, 2.0], [3.0], [4.0]]
PADDED = [
    [[1.0, 2.0, 0.0], [3.0, 0.0, 0.0], [4.0, 5.0, 6.0], [7.0, 0.0, 0.0]],
    [[1.0, 0.0], [2.0, 2.0], [3.0, 0.0], [4.0, 0.0]],
]


def test_tf_data_ragged_elements_keep_their_type_on_the_tf_path_and_pad_as_numpy() -> None:
    tf = pytest.importorskip("tensorflow")
    import numpy as np

    import feeders

    y = np.arange(8, dtype=np.float32)
    feeder = feeders.adapt(
        tf.data.Dataset.from_tensor_slices((tf.ragged.constant(ROWS), y)), batch_size=4
    )
    assert feeder.spec.x.kind == "ragged" and feeder.spec.x.shape == (None, None)
    # zeros up to each batch's longest row
    assert [x.tolist() for x, _, _ in feeder.epoch(0)] == PADDED
    batches = list(feeder.as_dataset())
    assert all(isinstance(x, tf.RaggedTensor) for x, _ in batches)
    assert [x.to_list() for x, _ in batches] == [ROWS[:4], ROWS[4:]]


def test_tf_data_sparse_elements_shuffle_by_seed_and_densify_as_numpy() -> None:
    tf = pytest.importorskip("tensorflow")
    import numpy as np

    import feeders

    dense = np.eye(8, dtype=np.float32) * np.arange(1, 9, dtype=np.float32)
    ids = np.arange(8)

    def adapt() -> feeders.Feeder:
        samples = tf.data.Dataset.from_tensor_slices((tf.sparse.from_dense(dense), ids))
        return feeders.adapt(samples, batch_size=4, shuffle_buffer=8, seed=3)

    feeder = adapt()
    assert feeder.spec.x.kind == "sparse"
    numpy = [(x, y) for x, y, _ in feeder.epoch(1)]
    order = np.concatenate([y for _, y in numpy])
    assert sorted(order.tolist()) == list(range(8)) and order.tolist() != list(range(8))
    for x, y in numpy:
        np.testing.assert_array_equal(x, dense[y])  # each row is its own sample, made dense
    replay = adapt()
    next(iter(replay.as_dataset()))  # epoch 0
    tf_batches = list(replay.as_dataset())  # epoch 1, on the TF path: sparse
    assert all(isinstance(x, tf.SparseTensor) for x, _ in tf_batches)
    assert [y.numpy().tolist() for _, y in tf_batches] == [y.tolist() for _, y in numpy]


def test_ragged_arrays_batch_by_rows_in_the_epoch_order_and_pad_per_batch() -> None:
    tf = pytest.importorskip("tensorflow")
    import numpy as np

    import feeders

    # Rows of lengths 0..4 with an inner dimension; row i holds the value i.
    lengths = [i % 5 for i in range(10)]
    rows = [[[float(i), -float(i)]] * n for i, n in enumerate(lengths)]
    ragged = tf.ragged.constant(rows, ragged_rank=1, inner_shape=(2,))
    ids = np.arange(10)
    feeder = feeders.adapt(ragged, ids, batch_size=4, seed=5)
    assert feeder.spec.x.shape == (None, None, 2) and feeder.spec.x.kind == "ragged"
    for x, y, _ in feeder.epoch(2):
        width = max(lengths[i] for i in y)
        expected = np.zeros((len(y), width, 2), np.float32)
        for row, i in enumerate(y):
            expected[row, : lengths[i]] = [i, -i]
        np.testing.assert_array_equal(x, expected)  # float32, as Keras casts floats
    train, val = feeder.split(0.2)
    assert train.source.num_samples == 8
    assert [y.tolist() for _, y, _ in val.epoch(0)] == [[8, 9]]
    tf_batches = list(val.as_dataset())
    assert [x.to_list() for x, _ in tf_batches] == [rows[8:]]
    assert tf_batches[0][0].dtype == tf.float32


def test_sequence_batches_of_sparse_tensors_stay_sparse_for_tensorflow() -> None:
    tf = pytest.importorskip("tensorflow")
    sparse = pytest.importorskip("scipy.sparse")
    import keras
    import numpy as np

    import feeders

    dense = np.eye(12, 5, dtype=np.float32)

    class Batches(keras.utils.PyDataset):
        def __len__(self) -> int:
            return 3

        def __getitem__(self, i: int) -> tuple:
            return sparse.csr_matrix(dense[4 * i : 4 * i + 4]), np.arange(4 * i, 4 * i + 4)

    feeder = feeders.adapt(Batches(), shuffle=False, workers=2, use_multiprocessing=False)
    assert feeder.spec.x.kind == "sparse"
    numpy = list(feeder.epoch(0))
    np.testing.assert_array_equal(np.concatenate([x for x, _, _ in numpy]), dense)
    tf_batches = list(feeder.as_dataset())
    assert all(isinstance(x, tf.SparseTensor) for x, _ in tf_batches)
    np.testing.assert_array_equal(
        np.concatenate([tf.sparse.to_dense(x).numpy() for x, _ in tf_batches]), dense
    )


@pytest.mark.parametrize("kind", ["sparse", "ragged"])
def test_sparse_and_ragged_arrays_gathered_by_tf_ops_are_the_numpy_epochs(kind: str) -> None:
    tf = pytest.importorskip("tensorflow")
    sparse = pytest.importorskip("scipy.sparse")
    import numpy as np

    import feeders

    rng = np.random.default_rng(0)
    dense = (rng.random((23, 7)) * (rng.random((23, 7)) < 0.3)).astype(np.float32)
    lengths = [i % 5 for i in range(23)]  # 43 values, some rows empty
    x = {
        "sparse": sparse.csr_matrix(dense),
        "ragged": tf.RaggedTensor.from_row_lengths(rng.random(43, dtype=np.float32), lengths),
    }[kind]
    to_numpy = {"sparse": tf.sparse.to_dense, "ragged": lambda t: t.to_tensor()}[kind]
    feeder = feeders.adapt(x, np.arange(23), batch_size=5, seed=4)  # a partial batch of 3
    expected = [list(feeder.epoch(n)) for n in range(2)]
    dataset = feeder.as_dataset()
    for epoch in expected:  # each iteration of the dataset is the next epoch
        found = list(dataset)
        assert len(found) == len(epoch) == 5
        for (x_tf, y_tf), (x_np, y_np, _) in zip(found, epoch, strict=True):
            assert type(x_tf).__name__ == {"sparse": "SparseTensor", "ragged": "RaggedTensor"}[kind]
            np.testing.assert_array_equal(y_tf.numpy(), y_np)
            np.testing.assert_array_equal(to_numpy(x_tf).numpy(), x_np)


def test_sharded_sparse_sequences_pad_their_last_round_with_masked_rows() -> None:
    tf = pytest.importorskip("tensorflow")
    sparse = pytest.importorskip("scipy.sparse")
    import keras
    import numpy as np

    import feeders

    dense = np.arange(50, dtype=np.float32).reshape(10, 5)

    class Batches(keras.utils.PyDataset):
        batch_size = 4

        def __len__(self) -> int:
            return 3

        def __getitem__(self, i: int) -> tuple:
            rows = slice(4 * i, min(4 * i + 4, 10))
            return sparse.csr_matrix(dense[rows]), np.arange(10)[rows]

    # Process 0 of 2 reads global batches 0 and 2; batch 2 has 2 rows, padded with row 8.
    feeder = feeders.adapt(Batches(), shuffle=False).shard(0, 2)
    assert feeder.spec.x.kind == "sparse"
    (x0, y0, w0), (x1, y1, w1) = feeder.epoch(0)
    np.testing.assert_array_equal(x0, dense[:4])
    assert (y0.tolist(), w0.tolist()) == ([0, 1, 2, 3], [1.0] * 4)
    np.testing.assert_array_equal(x1, dense[[8, 9, 8, 8]])
    assert (y1.tolist(), w1.tolist()) == ([8, 9, 8, 8], [1.0, 1.0, 0.0, 0.0])
    tf_batches = list(feeder.as_dataset())
    assert all(isinstance(x, tf.SparseTensor) for x, *_ in tf_batches)
    np.testing.assert_array_equal(tf.sparse.to_dense(tf_batches[1][0]).numpy(), x1)


def test_class_weight_with_sparse_targets_is_refused() -> None:
    sparse = pytest.importorskip("scipy.sparse")
    import numpy as np

    import feeders

    one_hot = sparse.csr_matrix(np.eye(10, 3, dtype=np.float32))
    with pytest.raises(
        ValueError,
        match=r"`class_weight` looks up each sample's class in dense targets, but y is sparse "
        r"\(shape \(None, 3\)\)\. Pass the labels as a dense array",
    ):
        feeders.adapt(np.zeros((10, 2)), one_hot, batch_size=4, class_weight={0: 1.0, 1: 2.0})


def test_sparse_batches_put_on_the_jax_device_ahead_stay_bcoo() -> None:
    pytest.importorskip("jax")
    sparse = pytest.importorskip("scipy.sparse")
    import numpy as np
    from jax.experimental import sparse as jax_sparse

    import feeders
    from feeders.backends.jax_batches import jax_batches

    dense = np.eye(6, 4, dtype=np.float32)
    feeder = feeders.adapt(sparse.csr_matrix(dense), np.arange(6), batch_size=4, shuffle=False)
    # ahead=True: the accelerator's path (jax.device_put of every leaf), here on the CPU.
    batches = list(jax_batches(feeder._keras_pass(to="jax"), ahead=True))
    assert all(isinstance(x, jax_sparse.BCOO) for x, _ in batches)
    np.testing.assert_array_equal(np.concatenate([x.todense() for x, _ in batches]), dense)
