"""The Keras contract at the fit/evaluate/predict boundary: nothing silently wrong (issue 10).

Every test goes through ``model.fit`` / ``evaluate`` / ``predict``, where users meet
feeders; the conformance suite's "through Keras" leg covers every source kind.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import feeders
from tests.contract_helpers import AugmentError, RaisingAt, id_batch
from tests.keras_recorder import Recorder

N, BATCH = 40, 4
NATURAL = [list(range(i, i + BATCH)) for i in range(0, N, BATCH)]


def id_arrays(n: int = N) -> tuple[np.ndarray, np.ndarray]:
    ids = np.arange(n, dtype=np.float32)
    return np.stack([ids, 2 * ids, 3 * ids], axis=1), (np.arange(n) % 5).astype(np.int64)


# -- 1. predict and evaluate never shuffle; fit(shuffle=False) means unshuffled -------------
def test_predict_returns_rows_in_order_from_a_shuffling_feeder() -> None:
    x, y = id_arrays(256)
    feeder = feeders.adapt(x, y, batch_size=32, seed=3)
    rows = Recorder().echo.predict(feeder, verbose=0)
    np.testing.assert_array_equal(rows, x)


def test_fit_shuffle_false_trains_epochs_in_natural_order_and_counts_them() -> None:
    x, y = id_arrays()
    feeder = feeders.adapt(x, y, batch_size=BATCH, seed=3)
    recorder = Recorder()
    recorder.model.fit(feeder, epochs=2, shuffle=False, verbose=0)
    assert recorder.seen == NATURAL * 2
    assert feeder.position == (2, 0)


def test_predict_and_evaluate_between_epochs_do_not_consume_training_epochs() -> None:
    x, y = id_arrays()
    expected = [b[0][:, 0].astype(int).tolist() for n in range(2) for b in
                feeders.adapt(x, y, batch_size=BATCH, seed=3).epoch(n)]  # fmt: skip
    feeder = feeders.adapt(x, y, batch_size=BATCH, seed=3)
    recorder = Recorder()
    recorder.model.fit(feeder, epochs=1, verbose=0)
    recorder.model.evaluate(feeder, verbose=0)
    recorder.echo.predict(feeder, verbose=0)
    assert feeder.position == (1, 0)
    recorder.model.fit(feeder, epochs=1, verbose=0)
    assert recorder.seen == expected


# -- 2. fit's data arguments are never silently dropped -------------------------------------
def _two_same_models() -> tuple[keras.Model, keras.Model]:
    first, second = Recorder().model, Recorder().model
    second.set_weights(first.get_weights())
    return first, second


def test_fit_class_weight_is_applied_as_if_given_to_adapt() -> None:
    x, y = id_arrays()
    weights = {0: 1.0, 1: 4.0, 2: 0.5, 3: 2.0, 4: 1.0}
    by_fit, by_adapt = _two_same_models()
    unweighted = Recorder().model
    unweighted.set_weights(by_fit.get_weights())
    loss_fit = by_fit.fit(
        feeders.adapt(x, y, batch_size=BATCH, seed=1), class_weight=weights, verbose=0
    ).history["loss"]
    loss_adapt = by_adapt.fit(
        feeders.adapt(x, y, batch_size=BATCH, seed=1, class_weight=weights), verbose=0
    ).history["loss"]
    loss_none = unweighted.fit(feeders.adapt(x, y, batch_size=BATCH, seed=1), verbose=0)
    assert loss_fit == loss_adapt != loss_none.history["loss"]
    for a, b in zip(by_fit.get_weights(), by_adapt.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_class_weight_given_to_fit_and_adapt_is_refused() -> None:
    x, y = id_arrays()
    feeder = feeders.adapt(x, y, class_weight={i: 1.0 for i in range(5)})
    with pytest.raises(ValueError, match=r"`class_weight` was given twice"):
        Recorder().model.fit(feeder, class_weight={i: 2.0 for i in range(5)}, verbose=0)


def test_fit_class_weight_missing_a_label_fails_before_training() -> None:
    x, y = id_arrays()
    model = Recorder().model
    with pytest.raises(ValueError, match=r"class_weight"):
        model.fit(feeders.adapt(x, y), class_weight={0: 1.0, 1: 1.0}, verbose=0)
    assert int(model.optimizer.iterations) == 0


@pytest.mark.parametrize(
    ("argument", "value", "fix"),
    [
        ("y", np.zeros(N), r"feeders\.adapt\(x, y\)"),
        ("sample_weight", np.ones(N), r"feeders\.adapt\(x, y, sample_weight=\.\.\.\)"),
        ("batch_size", 8, r"feeders\.adapt\(x, y, batch_size=\.\.\.\)"),
    ],
)
@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_data_arguments_next_to_a_feeder_name_where_they_belong(
    method: str, argument: str, value: object, fix: str
) -> None:
    x, y = id_arrays()
    model = Recorder().model
    if method == "predict" and argument in ("y", "sample_weight"):
        pytest.skip("predict takes no y or sample_weight")
    with pytest.raises(ValueError, match=rf"`{argument}` is not used when x is a feeder.*{fix}"):
        getattr(model, method)(feeders.adapt(x, y), **{argument: value}, verbose=0)


def test_validation_split_next_to_a_feeder_names_feeder_split() -> None:
    x, y = id_arrays()
    with pytest.raises(ValueError, match=r"validation_split=0\.2 with a feeder.*feeder\.split"):
        Recorder().model.fit(feeders.adapt(x, y), validation_split=0.2, verbose=0)


# -- 3. exceptions keep their type through fit ------------------------------------------------
POOLS = [
    pytest.param({"workers": 0}, id="w0"),
    pytest.param({"workers": 2}, id="threads2"),
    pytest.param({"workers": 2, "use_multiprocessing": True}, id="processes2"),
]


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_a_user_exception_from_getitem_keeps_its_type_and_says_where(
    pool: dict, method: str
) -> None:
    model = Recorder().model
    with (
        feeders.adapt(RaisingAt(3), shuffle=False, **pool) as feeder,
        pytest.raises(AugmentError, match=r"augmentation failed on batch 3[\s\S]*batch 3"),
    ):
        getattr(model, method)(feeder, verbose=0)


def test_a_killed_worker_is_a_worker_error_through_fit() -> None:
    model = Recorder().model
    with (
        feeders.adapt(
            RaisingAt(2, kill=True), shuffle=False, workers=2, use_multiprocessing=True
        ) as feeder,
        pytest.raises(feeders.WorkerError, match=r"killed by signal SIGKILL"),
    ):
        model.fit(feeder, epochs=1, verbose=0)


def test_a_value_error_from_a_generator_is_a_value_error_through_fit() -> None:
    def batches():
        yield id_batch(0)
        yield id_batch(1)
        raise ValueError("row 9 of the CSV has 2 fields, expected 3")

    with pytest.raises(ValueError, match=r"row 9 of the CSV"):
        Recorder().model.fit(feeders.adapt(batches), verbose=0)


def test_an_uncovered_label_in_a_tf_data_pipeline_is_a_value_error_through_fit() -> None:
    x, y = id_arrays()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
    feeder = feeders.adapt(dataset, class_weight={0: 1.0, 1: 1.0, 2: 1.0})
    with pytest.raises(ValueError, match=r"`class_weight` has no weight for class\(es\)"):
        Recorder().model.fit(feeder, verbose=0)


def test_after_an_error_the_next_fit_is_not_blamed_for_it() -> None:
    model = Recorder().model
    with pytest.raises(AugmentError):
        model.fit(feeders.adapt(RaisingAt(3), shuffle=False), verbose=0)
    x, y = id_arrays()
    model.fit(feeders.adapt(x, y), verbose=0)  # raises nothing left over from the failure


# -- 5. generators: Keras knows the epoch length after the first pass -----------------------
def test_generator_factory_trains_bit_identical_to_the_same_arrays() -> None:
    x, y = id_arrays()

    def batches():
        for i in range(0, N, BATCH):
            yield x[i : i + BATCH], y[i : i + BATCH]

    by_feeder, by_arrays = _two_same_models()
    by_feeder.fit(feeders.adapt(batches, shuffle=False), epochs=2, verbose=0)
    by_arrays.fit(x, y, batch_size=BATCH, shuffle=False, epochs=2, verbose=0)
    assert int(by_feeder.optimizer.iterations) == int(by_arrays.optimizer.iterations) == 20
    for a, b in zip(by_feeder.get_weights(), by_arrays.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


# -- 6. PyDataset parity ----------------------------------------------------------------------
class Sized(keras.utils.PyDataset):
    """Sized by ``num_batches`` only (no ``__len__``); ``None`` means infinite."""

    def __init__(self, num_batches: int | None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._num = num_batches
        self.events: list[str] = []

    @property
    def num_batches(self) -> int | None:
        return self._num

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        self.events.append(f"get {i}")
        return id_batch(i)

    def on_epoch_begin(self) -> None:
        self.events.append("begin")

    def on_epoch_end(self) -> None:
        self.events.append("end")


def test_a_pydataset_sized_by_num_batches_trains_with_its_epoch_hooks_in_order() -> None:
    dataset = Sized(3)
    recorder = Recorder()
    recorder.model.fit(feeders.adapt(dataset, shuffle=False), epochs=2, verbose=0)
    assert recorder.seen == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]] * 2
    epoch = ["begin", "get 0", "get 1", "get 2", "end"]
    assert dataset.events == epoch * 2


@pytest.mark.parametrize("where", ["adapt", "fit"])
def test_an_infinite_pydataset_streams_with_steps_per_epoch(where: str) -> None:
    recorder = Recorder()
    if where == "adapt":
        feeder = feeders.adapt(Sized(None), shuffle=False, steps_per_epoch=3)
        recorder.model.fit(feeder, epochs=2, verbose=0)
    else:
        recorder.model.fit(
            feeders.adapt(Sized(None), shuffle=False), steps_per_epoch=3, epochs=2, verbose=0
        )
    assert recorder.seen == [list(range(4 * i, 4 * i + 4)) for i in range(6)]


@pytest.mark.parametrize(
    ("knobs", "expected"),
    [
        ({}, (0, False)),
        ({"workers": 3}, (3, False)),
        ({"workers": 2, "use_multiprocessing": True}, (2, True)),
        ({"workers": 1, "use_multiprocessing": True}, (1, True)),
    ],
)
def test_a_pydatasets_own_worker_knobs_are_used(knobs: dict, expected: tuple) -> None:
    with feeders.adapt(Sized(4, **knobs)) as feeder:
        pool = feeder.source.pool
        assert (pool.workers, pool.use_multiprocessing) == expected


def test_adapt_knobs_win_over_the_pydatasets_own() -> None:
    with feeders.adapt(Sized(4, workers=4), workers=0) as feeder:
        assert feeder.source.pool.workers == 0


def test_an_empty_sequence_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"`sequence` has no batches: len\(Sized\) is 0"):
        feeders.adapt(Sized(0))


def test_shuffling_an_infinite_sequence_is_refused() -> None:
    with pytest.raises(ValueError, match=r"`shuffle=True` needs a finite sequence"):
        feeders.adapt(Sized(None), shuffle=True)


def _tf_batches(**kw: object) -> feeders.Feeder:
    return feeders.adapt(tf.data.Dataset.from_tensor_slices(id_arrays()).batch(BATCH), **kw)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda **kw: feeders.adapt(*id_arrays(), batch_size=BATCH, **kw), id="arrays"),
        pytest.param(lambda **kw: feeders.adapt(Sized(10), **kw), id="sequence"),
        pytest.param(_tf_batches, id="tf.data"),
        pytest.param(
            lambda **kw: feeders.adapt(
                lambda: (id_batch(i) for i in range(10)), num_batches=10, **kw
            ),
            id="generator",
        ),
    ],
)
def test_steps_per_epoch_beyond_one_epoch_is_refused_by_every_kind(make) -> None:
    """One rule for every kind: a pass is at most an epoch (Keras' fit(steps_per_epoch=)
    is the way to run longer passes over repeated data)."""
    with pytest.raises(ValueError, match=r"`steps_per_epoch` must be at most the 10 batches"):
        make(steps_per_epoch=11)
    assert make(steps_per_epoch=10).num_batches == 10


# -- TensorFlow never holds a feeder (the feeder side of issue 11's leak) ---------------------
@pytest.mark.parametrize("kind", ["arrays", "generator"])
def test_after_fit_a_dropped_feeder_is_freed(kind: str) -> None:
    import gc
    import weakref

    x, y = id_arrays()
    feeder = (
        feeders.adapt(x, y, batch_size=BATCH)
        if kind == "arrays"
        else feeders.adapt(lambda: (id_batch(i) for i in range(3)))
    )
    model = Recorder().model
    model.fit(feeder, validation_data=feeder, epochs=2, verbose=0)
    alive = weakref.ref(feeder)
    del feeder, model
    gc.collect()
    assert alive() is None


def test_the_dataset_of_a_temporary_feeder_keeps_it_alive() -> None:
    import gc

    x, y = id_arrays()
    dataset = feeders.adapt(x, y, batch_size=BATCH, shuffle=False).as_dataset()
    generated = feeders.adapt(lambda: (id_batch(i) for i in range(3))).as_dataset()
    gc.collect()
    assert [int(b[0][0, 0]) for b in dataset] == list(range(0, N, BATCH))
    assert sum(1 for _ in generated) == 3
