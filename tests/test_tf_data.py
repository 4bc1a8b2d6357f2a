"""The tf.data source: element forms, batching, TF-op weights, epochs under fit, split, errors."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

import feeders

IDS = np.arange(20, dtype=np.float32)


class BatchLog(keras.callbacks.Callback):
    """Groups the batches a model sees into runs: one per training epoch, one per validation."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[tuple[str, list[list[float]]]] = []
        self.weights: list[list[float]] = []

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.runs.append(("train", []))

    def on_test_begin(self, logs: Any = None) -> None:
        self.runs.append(("val", []))


class Seen(keras.metrics.Metric):
    """Records ``y_true`` (the sample ids) and the weights of every batch; needs run_eagerly."""

    def __init__(self, log: BatchLog) -> None:
        super().__init__(name="seen")
        self._log = log

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        self._log.runs[-1][1].append(np.ravel(np.asarray(y_true)).tolist())
        if sample_weight is not None:
            self._log.weights.append(np.ravel(np.asarray(sample_weight)).tolist())

    def result(self) -> float:
        return 0.0

    def reset_state(self) -> None:
        """Nothing to reset: the log keeps every run."""


def recording_model(log: BatchLog, classes: int = 0) -> keras.Model:
    """A tiny eager model whose metric logs each batch's targets (ids, or classes)."""
    inputs = keras.Input((1,))
    if classes:
        outputs = keras.layers.Dense(classes, activation="softmax")(inputs)
        loss = "sparse_categorical_crossentropy"
    else:
        outputs = keras.layers.Dense(1)(inputs)
        loss = "mse"
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss=loss, weighted_metrics=[Seen(log)], run_eagerly=True)
    return model


def id_batches(start: int, stop: int, size: int) -> list[list[float]]:
    return [list(map(float, range(i, min(i + size, stop)))) for i in range(start, stop, size)]


def id_dataset(n: int = 20, batch: int | None = 4, offset: float = 0.0) -> tf.data.Dataset:
    ids = np.arange(n, dtype=np.float32) + offset
    dataset = tf.data.Dataset.from_tensor_slices((ids[:, None], ids))
    return dataset if batch is None else dataset.batch(batch)


def contents(batches: Any) -> list[list[list[Any]]]:
    """Every leaf of every batch as nested lists, for exact comparisons."""
    return [[np.asarray(leaf).tolist() for leaf in tf.nest.flatten(batch)] for batch in batches]


def tf_batches(feeder: feeders.Feeder) -> list[list[list[Any]]]:
    return contents(feeder.as_dataset().as_numpy_iterator())


def numpy_batches(feeder: feeders.Feeder, epoch: int = 0) -> list[list[list[Any]]]:
    return contents(
        tuple(part for part in batch if part is not None) for batch in feeder.epoch(epoch)
    )


# -- element forms -------------------------------------------------------------
x6 = np.arange(12, dtype=np.float32).reshape(6, 2)
y6 = np.array([0, 1, 2, 0, 1, 2])
w6 = np.linspace(0.5, 3.0, 6).astype(np.float32)
FORMS = {
    "x": x6,
    "(x,)": (x6,),
    "(x, y)": (x6, y6),
    "(x, y, sample_weight)": (x6, y6, w6),
    "dict x, list-free tuple y": ({"a": x6, "b": y6}, (y6, w6)),
}


@pytest.mark.parametrize("form", FORMS, ids=str)
def test_every_element_form_gives_exact_batches_on_both_paths(form: str) -> None:
    feeder = feeders.adapt(tf.data.Dataset.from_tensor_slices(FORMS[form]).batch(4))
    leaves = [np.asarray(leaf) for leaf in tf.nest.flatten(FORMS[form])]
    expected = [[leaf[:4].tolist() for leaf in leaves], [leaf[4:].tolist() for leaf in leaves]]
    assert numpy_batches(feeder) == expected
    assert tf_batches(feeder) == expected
    assert feeder.as_dataset().element_spec == feeder.spec.to_tf()
    assert feeder.num_batches == 2


def test_samples_are_batched_when_batch_size_is_given() -> None:
    feeder = feeders.adapt(id_dataset(batch=None), batch_size=6, drop_remainder=True)
    assert feeder.num_batches == 3
    assert [b[1].tolist() for b in feeder.epoch(0)] == id_batches(0, 18, 6)
    assert feeder.spec.to_tf() == feeder.as_dataset().element_spec
    assert feeder.as_dataset().element_spec[0].shape.as_list() == [None, 1]


def test_static_batch_dimension_is_opened_to_match_the_spec() -> None:
    feeder = feeders.adapt(id_dataset().unbatch().batch(5, drop_remainder=True))
    assert feeder.as_dataset().element_spec == feeder.spec.to_tf()
    assert feeder.spec.y.shape == (None,)
    assert [b[1].tolist() for b in feeder.epoch(0)] == id_batches(0, 20, 5)


def test_start_skips_batches_on_both_paths() -> None:
    feeder = feeders.adapt(id_dataset())
    assert [b[1].tolist() for b in feeder.epoch(0, start=3)] == id_batches(12, 20, 4)
    feeder.seek(2, 3)
    assert [b[1] for b in tf_batches(feeder)] == id_batches(12, 20, 4)
    assert feeder.position == (3, 0)


def test_seeded_shuffle_is_reproducible_and_new_every_epoch() -> None:
    def shuffled(seed: int) -> feeders.Feeder:
        return feeders.adapt(id_dataset(batch=None), batch_size=5, seed=seed, shuffle_buffer=20)

    first = [b[1].tolist() for b in shuffled(3).epoch(0)]
    assert first == [b[1].tolist() for b in shuffled(3).epoch(0)]
    assert first != [b[1].tolist() for b in shuffled(3).epoch(1)]
    assert first != [b[1].tolist() for b in shuffled(4).epoch(0)]
    assert sorted(np.concatenate(first).tolist()) == IDS.tolist()
    feeder = shuffled(3)
    dataset = feeder.as_dataset()
    passes = [[b[1] for b in contents(dataset.as_numpy_iterator())] for _ in range(2)]
    assert passes == [[b[1].tolist() for b in shuffled(3).epoch(n)] for n in range(2)]


def test_seeded_shuffle_ignores_the_global_tf_seed_even_zero() -> None:
    def order() -> list[list[float]]:
        feeder = feeders.adapt(id_dataset(batch=None), batch_size=5, seed=3, shuffle_buffer=20)
        return [b[1].tolist() for b in feeder.epoch(0)]

    unseeded = order()
    tf.random.set_seed(0)
    try:
        assert order() == unseeded
    finally:
        tf.random.set_seed(None)


def test_shuffle_false_keeps_the_pipeline_order() -> None:
    feeder = feeders.adapt(id_dataset(batch=None), batch_size=5, shuffle=False, shuffle_buffer=20)
    assert [b[1].tolist() for b in feeder.epoch(1)] == id_batches(0, 20, 5)


# -- weights as TF ops -----------------------------------------------------------
FLAT_FIRST = [0.5, 2.0, 6.0, 4.0]  # classes 0, 1, 2, 1 weighted 1, 2, 4 times w6[:4]
LABELS = {
    "sparse int": (np.array([0, 1, 2, 1, 0, 2]), FLAT_FIRST),
    "column int": (np.array([[0], [1], [2], [1], [0], [2]], dtype=np.int32), FLAT_FIRST),
    "one-hot float": (np.eye(3, dtype=np.float32)[[0, 1, 2, 1, 0, 2]], FLAT_FIRST),
    "whole floats": (np.array([0.0, 1.0, 2.0, 1.0, 0.0, 2.0]), FLAT_FIRST),
    "per timestep": (
        np.array([[0, 1], [2, 1], [0, 0], [1, 2], [2, 2], [0, 1]])[..., None],
        [[0.5, 1.0], [4.0, 2.0], [1.5, 1.5], [4.0, 8.0]],
    ),
}


@pytest.mark.parametrize("layout", LABELS, ids=str)
def test_class_weight_tf_ops_equal_the_numpy_path(layout: str) -> None:
    labels, first_weights = LABELS[layout]
    dataset = tf.data.Dataset.from_tensor_slices((x6, labels, w6)).batch(4)
    feeder = feeders.adapt(dataset, class_weight={0: 1.0, 1: 2.0, 2: 4.0})
    got = tf_batches(feeder)
    assert got == numpy_batches(feeder)
    assert got[0][2] == first_weights
    assert feeder.as_dataset().element_spec == feeder.spec.to_tf()


def test_class_weight_multiplies_sample_weight_exactly() -> None:
    dataset = tf.data.Dataset.from_tensor_slices((x6, LABELS["sparse int"][0], w6)).batch(6)
    feeder = feeders.adapt(dataset, class_weight={0: 1.0, 1: 2.0, 2: 4.0})
    (weights,) = [batch[2] for batch in feeder.as_dataset().as_numpy_iterator()]
    np.testing.assert_allclose(weights, np.array([1.0, 2.0, 4.0, 2.0, 1.0, 4.0]) * w6)
    assert weights.dtype == np.float32


def test_per_output_class_weight_on_dict_targets() -> None:
    targets = {"class_output": np.array([0, 4, 4, 0]), "value": np.arange(4, dtype=np.float32)}
    dataset = tf.data.Dataset.from_tensor_slices((x6[:4], targets)).batch(2)
    feeder = feeders.adapt(dataset, class_weight={"class_output": {0: 1.0, 4: 2.0}})
    weights = [batch[2] for batch in feeder.as_dataset().as_numpy_iterator()]
    assert [w["class_output"].tolist() for w in weights] == [[1.0, 2.0], [2.0, 1.0]]
    assert [w["value"].tolist() for w in weights] == [[1.0, 1.0], [1.0, 1.0]]
    assert feeder.as_dataset().element_spec == feeder.spec.to_tf()


def test_class_weights_reach_the_model_in_fit() -> None:
    log = BatchLog()
    labels = np.array([0, 1, 2, 1, 0, 2])
    dataset = tf.data.Dataset.from_tensor_slices((x6[:, :1], labels)).batch(3)
    feeder = feeders.adapt(dataset, class_weight={0: 1.0, 1: 2.0, 2: 4.0})
    recording_model(log, classes=3).fit(feeder, epochs=1, verbose=0, callbacks=[log])
    assert log.runs == [("train", [[0.0, 1.0, 2.0], [1.0, 0.0, 2.0]])]
    assert log.weights == [[1.0, 2.0, 4.0], [2.0, 1.0, 4.0]]


def test_a_class_without_weight_fails_inside_the_pipeline() -> None:
    dataset = tf.data.Dataset.from_tensor_slices((x6, y6)).batch(3)
    feeder = feeders.adapt(dataset, class_weight={0: 1.0, 1: 2.0})
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"has no weight for class\(es\)"):
        list(feeder.as_dataset())


def test_class_weight_on_float_labels_is_refused_on_both_paths() -> None:
    dataset = tf.data.Dataset.from_tensor_slices((x6, np.linspace(0, 1, 6))).batch(3)
    feeder = feeders.adapt(dataset, class_weight={0: 1.0, 1: 2.0})
    with pytest.raises(tf.errors.InvalidArgumentError, match="needs integer class labels"):
        list(feeder.as_dataset())
    with pytest.raises(ValueError, match="needs integer class labels, but y holds non-integer"):
        list(feeder.epoch(0))


# -- epochs under fit ------------------------------------------------------------
def test_fit_trains_on_every_batch_once_per_epoch() -> None:
    log = BatchLog()
    feeder = feeders.adapt(id_dataset())
    recording_model(log).fit(feeder, epochs=2, verbose=0, callbacks=[log])
    assert log.runs == [("train", id_batches(0, 20, 4))] * 2
    assert feeder.position == (2, 0)


def test_steps_per_epoch_continues_the_stream_across_epochs() -> None:
    log = BatchLog()
    feeder = feeders.adapt(id_dataset(), steps_per_epoch=3)
    recording_model(log).fit(feeder, epochs=3, verbose=0, callbacks=[log])
    stream = id_batches(0, 20, 4) * 2
    assert log.runs == [("train", stream[0:3]), ("train", stream[3:6]), ("train", stream[6:9])]


def test_validation_steps_validate_on_the_same_first_batches_every_epoch() -> None:
    log = BatchLog()
    validation = feeders.adapt(id_dataset(batch=2, offset=100))
    recording_model(log).fit(
        feeders.adapt(id_dataset()),
        epochs=3,
        verbose=0,
        callbacks=[log],
        validation_data=validation,
        validation_steps=2,
    )
    first_two = [[100.0, 101.0], [102.0, 103.0]]
    assert [run for run in log.runs if run[0] == "val"] == [("val", first_two)] * 3
    assert [run for run in log.runs if run[0] == "train"] == [("train", id_batches(0, 20, 4))] * 3


# -- split -----------------------------------------------------------------------
def test_split_by_batches_of_a_batched_dataset() -> None:
    train, val = feeders.adapt(id_dataset()).split(0.4)
    assert [b[1].tolist() for b in train.epoch(0)] == id_batches(0, 12, 4)
    assert [b[1].tolist() for b in val.epoch(0)] == id_batches(12, 20, 4)
    assert (train.num_batches, val.num_batches) == (3, 2)


def test_split_by_samples_before_shuffling() -> None:
    feeder = feeders.adapt(id_dataset(batch=None), batch_size=4, seed=1, shuffle_buffer=20)
    train, val = feeder.split(6)
    train_ids = sorted(i for b in train.epoch(0) for i in b[1].tolist())
    assert train_ids == IDS[:14].tolist()
    assert [b[1].tolist() for b in val.epoch(0)] == [[14.0, 15.0, 16.0, 17.0], [18.0, 19.0]]


def test_cardinality_lets_an_unknown_size_dataset_split() -> None:
    unknown = id_dataset().filter(lambda x, y: True)
    train, val = feeders.adapt(unknown, cardinality=5).split(1)
    assert [b[1].tolist() for b in val.epoch(0)] == [[16.0, 17.0, 18.0, 19.0]]
    assert train.num_batches == 4


# -- bad input -------------------------------------------------------------------
def test_element_tuples_longer_than_three_are_refused() -> None:
    dataset = tf.data.Dataset.from_tensor_slices((x6,) * 4).batch(2)
    with pytest.raises(ValueError, match=r"must be `x`, `\(x,\)`, .* but got a tuple of 4"):
        feeders.adapt(dataset)


def test_static_batch_size_mismatch_is_refused_at_once() -> None:
    xs = tf.data.Dataset.from_tensor_slices(x6).batch(4, drop_remainder=True)
    ys = tf.data.Dataset.from_tensor_slices(y6).batch(3, drop_remainder=True)
    with pytest.raises(ValueError, match=r"same number of rows, .* \{'x': 4, 'y': 3\}"):
        feeders.adapt(tf.data.Dataset.zip((xs, ys)))


def test_dynamic_batch_size_mismatch_fails_the_batch() -> None:
    xs = tf.data.Dataset.from_tensor_slices(x6).batch(4)
    feeder = feeders.adapt(
        tf.data.Dataset.zip((xs, tf.data.Dataset.from_tensor_slices(y6).batch(3)))
    )
    with pytest.raises(
        ValueError, match=r"same number of rows, but batch 0 of epoch 0 has \{'x': 4, 'y': 3\}"
    ):
        list(feeder.epoch(0))


def test_split_of_an_infinite_dataset_is_refused() -> None:
    with pytest.raises(ValueError, match=r"finite dataset of known size, but this one is infinite"):
        feeders.adapt(id_dataset().repeat()).split(0.2)


def test_split_of_an_unknown_size_dataset_asks_for_cardinality() -> None:
    with pytest.raises(ValueError, match=r"of unknown size .* cardinality=<number of batches>"):
        feeders.adapt(id_dataset().filter(lambda x, y: True)).split(0.2)


def test_split_of_a_reshuffling_pipeline_is_refused() -> None:
    dataset = id_dataset(batch=None).shuffle(20).batch(4)
    with pytest.raises(ValueError, match="same elements in the same order on every iteration"):
        feeders.adapt(dataset).split(0.2)


def test_steps_per_epoch_beyond_a_finite_dataset_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"at most the 5 batches the source has, .*steps_per_epoch=6"
    ):
        feeders.adapt(id_dataset(), steps_per_epoch=6)


def test_unbatched_dataset_without_batch_size_is_refused() -> None:
    with pytest.raises(ValueError, match=r"but \['y'\] are scalars .* looks unbatched"):
        feeders.adapt(id_dataset(batch=None))


def test_batch_size_on_a_batched_dataset_is_refused() -> None:
    with pytest.raises(ValueError, match="looks batched already"):
        feeders.adapt(id_dataset(), batch_size=4)


def test_targets_outside_the_dataset_are_refused() -> None:
    with pytest.raises(TypeError, match=r"`y` does not apply to 'tf.data' sources .* Put them in"):
        feeders.adapt(id_dataset(), y6)


def test_elements_that_are_not_tensors_are_refused() -> None:
    windows = tf.data.Dataset.range(6).window(2)  # elements are datasets
    with pytest.raises(
        TypeError,
        match=r"must hold tensors, sparse tensors or ragged tensors, but element is a "
        r"DatasetSpec\. Map it",
    ):
        feeders.adapt(windows)


def test_drop_remainder_without_batch_size_is_refused() -> None:
    with pytest.raises(ValueError, match="`drop_remainder` applies when feeders batches"):
        feeders.adapt(id_dataset(), drop_remainder=True)


def test_elements_of_unknown_rank_are_refused() -> None:
    dataset = tf.data.Dataset.from_generator(
        lambda: iter([np.zeros((2, 2))]), output_signature=tf.TensorSpec(None, tf.float64)
    )
    with pytest.raises(ValueError, match=r"need a known rank, but element has an unknown shape"):
        feeders.adapt(dataset)


def test_class_weight_needs_a_static_last_label_dimension_on_the_tf_path() -> None:
    dataset = tf.data.Dataset.from_generator(
        lambda: iter([(np.zeros((2, 1)), np.zeros((2, 3), np.int64))]),
        output_signature=(tf.TensorSpec((None, 1)), tf.TensorSpec((None, None), tf.int64)),
    )
    feeder = feeders.adapt(dataset, class_weight={0: 1.0})
    with pytest.raises(ValueError, match=r"needs the rank and last dimension of y to be known"):
        feeder.as_dataset()
