"""Sequence/PyDataset sources: epoch hooks, no hidden calls, workers, errors."""

from __future__ import annotations

import numpy as np
import pytest

import feeders
from feeders.harness import mnist_model
from tests.sequence_helpers import CountingSequence, FailingSequence, ReshufflingSequence


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
        [int(b[0][0, 0]) // 8 for b in feeders.adapt(CountingSequence(), seed=s).epoch(e)]
        for s, e in ((1, 0), (1, 0), (1, 1))
    ]
    assert orders[0] == orders[1] != orders[2]
    assert sorted(orders[0]) == list(range(5))


def test_y_with_a_sequence_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"`y` is not used with a Sequence, which returns whole batches"
    ):
        feeders.adapt(CountingSequence(), np.zeros(3))


def test_a_getitem_returning_four_parts_is_refused() -> None:
    class Four(CountingSequence):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return x, y, y, y

    with pytest.raises(
        ValueError,
        match=r"`sequence\[0\]` must return x, \(x, y\) or \(x, y, sample_weight\), but got a tuple of length 4",
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
