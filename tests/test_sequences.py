"""Sequence/PyDataset sources: epoch hooks, no hidden calls, workers, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

import feeders
from feeders.harness import mnist_model
from tests.sequence_helpers import (
    ChangingSequence,
    CountingSequence,
    FailingSequence,
    ReshufflingSequence,
)


@pytest.mark.parametrize("workers", [0, 2])
def test_on_epoch_end_once_per_epoch_and_no_hidden_getitem_in_fit(workers: int) -> None:
    """Validation passes are not training epochs: they run no epoch hooks (so they
    cannot change what the next training epoch sees), and read every batch once."""
    import keras

    train, val = CountingSequence(), CountingSequence(n=16)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    with (
        feeders.adapt(train, workers=workers, shuffle=False) as t,
        feeders.adapt(val, shuffle=False) as v,
    ):
        model.fit(t, validation_data=v, epochs=3, verbose=0)
    assert train.epoch_ends == 3
    assert val.epoch_ends == 0
    if workers == 0:
        assert sorted(train.getitem_calls) == sorted(list(range(5)) * 3)
        assert sorted(val.getitem_calls) == sorted(list(range(2)) * 3)


def test_keras_itself_makes_hidden_calls_that_feeders_does_not() -> None:
    """Keras 3.15's own PyDataset path, pinned: it peeks batches 0 and 1 before the first
    epoch and calls on_epoch_end once more than there are epochs (twice per validation
    run). If Keras fixes this, this test tells us the workaround may go."""
    import keras

    class KerasCounting(CountingSequence, keras.utils.PyDataset):
        def __init__(self, n: int = 40) -> None:
            keras.utils.PyDataset.__init__(self)
            CountingSequence.__init__(self, n)

    train, val = KerasCounting(), KerasCounting(16)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(train, validation_data=val, epochs=2, verbose=0, shuffle=False)
    assert train.getitem_calls == [0, 1, *range(5), *range(5)]
    assert (train.epoch_ends, val.epoch_ends) == (3, 4)


@pytest.mark.parametrize("processes", [False, True])
def test_what_on_epoch_end_changes_reaches_the_workers(processes: bool) -> None:
    seq = ReshufflingSequence()
    with feeders.adapt(seq, workers=2, use_multiprocessing=processes, shuffle=False) as feeder:
        for epoch in range(3):
            batches = list(feeder.epoch(epoch))
            ids = np.concatenate([b[0][:, 0] for b in batches]).astype(int)
            expected = np.arange(24) if epoch == 0 else np.random.default_rng(epoch).permutation(24)
            np.testing.assert_array_equal(ids, expected)
            assert all((b[1] == epoch).all() for b in batches)
        assert seq.epochs_ended == 3


def test_worker_processes_persist_across_epochs() -> None:
    seq = ReshufflingSequence()
    with feeders.adapt(seq, workers=2, use_multiprocessing=True, shuffle=False) as feeder:
        pids = [set(np.concatenate([b[2] for b in feeder.epoch(n)]).tolist()) for n in range(3)]
    worker_pids = set().union(*pids) - {__import__("os").getpid()}
    assert 1 <= len(worker_pids) <= 2


def test_stopping_early_still_ends_the_epoch_before_the_next_starts() -> None:
    seq = CountingSequence()
    feeder = feeders.adapt(seq, shuffle=False)
    next(feeder.epoch(0))
    assert seq.epoch_ends == 0
    list(feeder.epoch(1))
    assert seq.epoch_ends == 2


def test_exception_in_getitem_keeps_its_type_and_names_the_batch() -> None:
    feeder = feeders.adapt(FailingSequence(bad=3), workers=2, shuffle=False)
    with feeder, pytest.raises(KeyError, match=r"batch 3"):
        list(feeder.epoch(0))


def test_batch_order_is_shuffled_per_epoch_from_the_seed() -> None:
    orders = [
        [
            int(b[0][0, 0]) // 8
            for b in feeders.adapt(CountingSequence(), shuffle=True, seed=s).epoch(e)
        ]
        for s, e in ((1, 0), (1, 0), (1, 1))
    ]
    assert orders[0] == orders[1] != orders[2]
    assert sorted(orders[0]) == list(range(5))


def test_y_with_a_sequence_is_refused() -> None:
    with pytest.raises(
        TypeError, match=r"`y` does not apply to 'sequence' sources .* returns whole batches"
    ):
        feeders.adapt(CountingSequence(), np.zeros(3))


def test_a_getitem_returning_four_parts_is_refused() -> None:
    class Four(CountingSequence):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return x, y, y, y

    with pytest.raises(
        ValueError,
        match=r"must be `x`, `\(x,\)`, .* but the batch sequence\[0\] \(epoch 0\) is a tuple of 4",
    ):
        feeders.adapt(Four(), shuffle=False)


@pytest.mark.slow
def test_fit_with_worker_processes_after_tensorflow_started() -> None:
    (x, y), _ = feeders.datasets.load_mnist()
    x = x[:2048].reshape(-1, 784).astype("float32") / 255
    from tests.id_sequence import IdSequence

    model = mnist_model(seed=0)
    with feeders.adapt(
        IdSequence(x, y[:2048], 64), workers=2, use_multiprocessing=True, seed=0
    ) as feeder:
        history = model.fit(feeder, epochs=2, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]


# -- every batch is checked (NOTE [ one batch checker ]) --------------------------
SPOILED = {
    "uint8": r"changed x: it has dtype uint8 where the first batch, sequence\[0\], had dtype float32",
    "rank": r"changed x: it has shape \(4, 3, 1\) where the first batch, sequence\[0\], had shape \(None, 3\)",
    "None x": r"changed x: it has None where the first batch, sequence\[0\], had an array",
    "dict x": r"changed x: it has a dict where the first batch, sequence\[0\], had an array",
    "no weights": r"has 2 parts but the first batch, sequence\[0\], had 3 \(x, y, sample_weight\)",
    "short y": r"different batch sizes: \{'x': 4, 'y': 3, 'sample_weight': 4\}",
    "NaN weight": r"`sample_weight` of the batch sequence\[3\] \(epoch 0\) must be finite and non-negative.*nan",
    "negative weight": r"`sample_weight` of the batch sequence\[3\] \(epoch 0\) must be finite and non-negative",
}


@pytest.mark.parametrize("workers,processes", [(0, False), (2, False), (2, True)])
@pytest.mark.parametrize("change", SPOILED, ids=str)
def test_every_batch_is_checked_and_named(change: str, workers: int, processes: bool) -> None:
    feeder = feeders.adapt(
        ChangingSequence(bad=3, change=change),
        workers=workers,
        use_multiprocessing=processes,
        shuffle=False,
    )
    with feeder, pytest.raises(ValueError, match=SPOILED[change]):
        list(feeder.epoch(0))


@pytest.mark.parametrize("change", ["uint8", "None x", "NaN weight"])
def test_a_spoiled_later_batch_fails_model_fit_naming_batch_and_field(change: str) -> None:
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    feeder = feeders.adapt(ChangingSequence(bad=3, change=change), shuffle=False)
    # Until TF errors are unwrapped at the fit boundary, match the text (the type: above).
    with feeder, pytest.raises(Exception, match=r"sequence\[3\] \(epoch 0\)") as caught:
        model.fit(feeder, epochs=1, verbose=0)
    assert re.search(SPOILED[change], str(caught.value))


def test_tensor_batches_come_out_as_numpy() -> None:
    import tensorflow as tf

    class Tensors(CountingSequence):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return tf.constant(x), tf.constant(y)

    batches = list(feeders.adapt(Tensors(), shuffle=False).epoch(0))
    assert all(type(b[0]) is np.ndarray and type(b[1]) is np.ndarray for b in batches)
    np.testing.assert_array_equal(np.concatenate([b[0][:, 0] for b in batches]), np.arange(40))
