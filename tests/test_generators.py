"""The generator source: peek once, every batch exactly once, factories vs single pass, errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

import feeders
from feeders.sources.generators import GeneratorSource
from tests.test_tf_data import BatchLog, id_batches, recording_model


class Counting:
    """A factory of ``num`` id batches of 2 that counts its calls and the batches it made."""

    def __init__(self, num: int = 10) -> None:
        self.num, self.calls, self.made = num, 0, 0

    def __call__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        self.calls += 1
        for i in range(self.num):
            self.made += 1
            ids = np.array([2 * i, 2 * i + 1], dtype=np.float32)
            yield ids[:, None], ids


def ids_of(batches: Any) -> list[list[float]]:
    return [np.asarray(batch[1]).tolist() for batch in batches]


TEN = id_batches(0, 20, 2)


# -- peek once, yield once -------------------------------------------------------
def test_the_first_batch_is_peeked_once_and_yielded_once() -> None:
    factory = Counting()
    feeder = feeders.adapt(factory)
    assert (factory.calls, factory.made) == (1, 1)
    assert feeder.spec == feeders.BatchSpec(
        feeders.ArraySpec((None, 1), np.dtype("float32")),
        feeders.ArraySpec((None,), np.dtype("float32")),
    )
    assert ids_of(feeder.epoch(0)) == TEN
    assert (factory.calls, factory.made) == (1, 10)
    assert ids_of(feeder.epoch(1)) == TEN
    assert (factory.calls, factory.made) == (2, 20)


def test_fit_sees_each_batch_of_a_finite_generator_exactly_once() -> None:
    """Keras replays its peeked batches (10 batches train as 10, then 2, then 2); feeders never."""
    log = BatchLog()
    factory = Counting()
    model = recording_model(log)
    model.fit(feeders.adapt(factory()), epochs=1, verbose=0, callbacks=[log])
    assert log.runs == [("train", TEN)]
    with pytest.raises(ValueError, match="single-pass generator was already read"):
        model.fit(feeders.adapt(factory()), epochs=2, verbose=0, callbacks=[log])


def test_a_factory_restarts_every_epoch_under_fit() -> None:
    """The length is learned from epoch 0 and handed to Keras: no "ran out of data"
    warning (warnings are errors here), and the optimizer counts the batches trained."""
    log = BatchLog()
    factory = Counting()
    feeder = feeders.adapt(factory)
    model = recording_model(log)
    model.fit(feeder, epochs=3, verbose=0, callbacks=[log])
    assert log.runs == [("train", TEN)] * 3
    assert (factory.calls, feeder.num_batches) == (3, 10)
    assert int(model.optimizer.iterations) == 30


def test_factory_validation_data_validates_every_batch_every_epoch() -> None:
    log = BatchLog()
    validation = feeders.adapt(Counting(3), num_batches=3)
    recording_model(log).fit(
        feeders.adapt(Counting(), num_batches=10),
        epochs=2,
        verbose=0,
        callbacks=[log],
        validation_data=validation,
    )
    assert log.runs == [("train", TEN), ("val", TEN[:3])] * 2


def test_steps_per_epoch_streams_a_single_pass_generator() -> None:
    log = BatchLog()
    feeder = feeders.adapt(Counting()(), steps_per_epoch=4)
    recording_model(log).fit(feeder, epochs=2, verbose=0, callbacks=[log])
    assert log.runs == [("train", TEN[0:4]), ("train", TEN[4:8])]


def test_a_single_pass_generator_that_runs_out_says_how_many_batches_it_had() -> None:
    feeder = feeders.adapt(Counting()(), steps_per_epoch=4)
    passes = [ids_of(feeder), ids_of(feeder)]
    assert passes == [TEN[0:4], TEN[4:8]]
    with pytest.raises(ValueError, match=r"ran out after 10 batches, during pass 3 .*at most 10"):
        list(feeder)


def test_a_second_epoch_of_a_single_pass_generator_is_refused() -> None:
    feeder = feeders.adapt(Counting()())
    assert ids_of(feeder) == TEN
    with pytest.raises(
        ValueError, match=r"already read \(10 batches\) and cannot restart for epoch 1"
    ):
        list(feeder)


def test_the_tf_dataset_has_the_exact_spec_and_the_batches() -> None:
    feeder = feeders.adapt(Counting(4), class_weight=None)
    dataset = feeder.as_dataset()
    assert dataset.element_spec == feeder.spec.to_tf()
    assert ids_of(dataset.as_numpy_iterator()) == TEN[:4]


def test_class_weight_and_sample_weight_on_generator_batches() -> None:
    def batches() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        yield np.zeros((3, 1)), np.array([0, 1, 1]), np.array([1.0, 0.5, 2.0])

    feeder = feeders.adapt(batches, class_weight={0: 2.0, 1: 3.0})
    (batch,) = feeder.as_dataset().as_numpy_iterator()
    assert batch[2].tolist() == [2.0, 1.5, 6.0]
    assert feeder.as_dataset().element_spec == feeder.spec.to_tf()


# -- shuffle and split -------------------------------------------------------------
def test_shuffle_by_batch_is_seeded_per_epoch() -> None:
    def shuffled(seed: int) -> feeders.Feeder:
        return feeders.adapt(Counting(), seed=seed, shuffle_buffer=4)

    first = ids_of(shuffled(1).epoch(0))
    assert first == ids_of(shuffled(1).epoch(0))
    assert first != ids_of(shuffled(1).epoch(1))
    assert first != ids_of(shuffled(2).epoch(0))
    assert sorted(first) == TEN
    assert ids_of(shuffled(1).epoch(0, start=3)) == first[3:]


def test_split_keeps_the_first_batches_for_training() -> None:
    train, val = feeders.adapt(Counting(), num_batches=10, shuffle=False).split(0.3)
    assert ids_of(train.epoch(0)) == TEN[:7]
    assert ids_of(val.epoch(0)) == TEN[7:]
    assert ids_of(val.epoch(1)) == TEN[7:]
    assert (train.num_batches, val.num_batches) == (7, 3)


def test_split_works_once_the_length_is_learned() -> None:
    feeder = feeders.adapt(Counting(5), shuffle=False)
    list(feeder.epoch(0))
    train, val = feeder.split(2)
    assert (ids_of(train.epoch(0)), ids_of(val.epoch(0))) == (TEN[:3], TEN[3:5])


# -- bad input -------------------------------------------------------------------
def one(*batches: Any) -> Any:
    """A factory yielding ``batches``."""
    return lambda: iter(batches)


X, Y = np.zeros((2, 3), np.float32), np.array([0, 1])


@pytest.mark.parametrize("size", [0, 4])
def test_batch_tuples_of_length_zero_or_over_three_are_refused(size: int) -> None:
    with pytest.raises(
        ValueError,
        match=f"must be `x`, .* but batch 0 of the generator \\(epoch 0\\) is a tuple of {size}",
    ):
        feeders.adapt(one((X,) * size))


def test_a_later_batch_with_a_bad_tuple_length_names_its_index() -> None:
    feeder = feeders.adapt(one((X, Y), (X, Y), (X, Y, Y, Y)))
    with pytest.raises(ValueError, match=r"batch 2 of the generator \(epoch 0\) is a tuple of 4"):
        list(feeder.epoch(0))


CHANGES = {
    "dtype": (
        (X, Y.astype(np.int32)),
        r"Batch 1 .* changed y: it has dtype int32 where batch 0 had dtype int64",
    ),
    "rank": (
        (X[:, :, None], Y),
        r"Batch 1 .* changed x: it has shape \(2, 3, 1\) where batch 0 had shape \(None, 3\)",
    ),
    "parts": ((X,), r"Batch 1 .* has 1 parts but batch 0 had 2 \(x, y\)"),
    "dict keys": (({"b": X}, Y), r"Batch 1 .* changed x: it has a dict where batch 0 had an array"),
}


@pytest.mark.parametrize("change", CHANGES, ids=str)
def test_a_batch_that_changes_structure_dtype_or_rank_names_index_and_field(change: str) -> None:
    batch, message = CHANGES[change]
    feeder = feeders.adapt(one((X, Y), batch))
    with pytest.raises(ValueError, match=message):
        list(feeder.epoch(0))


def test_a_changed_dict_key_names_the_field() -> None:
    feeder = feeders.adapt(one(({"a": X}, Y), ({"b": X}, Y)))
    with pytest.raises(
        ValueError,
        match=r"Batch 1 .* changed x: it has keys \['b'\] where batch 0 had keys \['a'\]",
    ):
        list(feeder.epoch(0))


def test_x_and_y_batch_sizes_must_match_within_a_batch() -> None:
    feeder = feeders.adapt(one((X, Y), (X, Y[:1])))
    with pytest.raises(ValueError, match=r"Batch 1 .* different batch sizes: \{'x': 2, 'y': 1\}"):
        list(feeder.epoch(0))


def test_negative_sample_weights_in_a_later_batch_are_refused() -> None:
    weights = np.ones(2, np.float32)
    feeder = feeders.adapt(one((X, Y, weights), (X, Y, -weights)))
    with pytest.raises(
        ValueError,
        match=r"`sample_weight` of batch 1 of the generator \(epoch 0\) must be finite and non-negative",
    ):
        list(feeder.epoch(0))


def test_class_weight_on_float_labels_is_refused() -> None:
    feeder = feeders.adapt(one((X, np.array([0.5, 1.0]))), class_weight={0: 1.0, 1: 2.0})
    with pytest.raises(
        ValueError, match="needs integer class labels, but y holds non-integer floats"
    ):
        list(feeder.epoch(0))


def test_an_empty_generator_is_refused() -> None:
    with pytest.raises(ValueError, match="yielded no batches"):
        feeders.adapt(one())


def test_a_factory_must_return_an_iterator() -> None:
    with pytest.raises(TypeError, match="must return an iterator of batches, but it returned int"):
        feeders.adapt(lambda: 3)


def test_batch_size_is_refused_for_generators() -> None:
    with pytest.raises(
        TypeError,
        match=r"`batch_size` does not apply to 'generator' sources .* yields whole batches",
    ):
        feeders.adapt(one((X, Y)), batch_size=2)


def test_a_pass_shorter_than_num_batches_is_an_error() -> None:
    feeder = feeders.adapt(Counting(3), num_batches=4)
    with pytest.raises(
        ValueError, match=r"ended after 3 batches in epoch 0, but a pass has num_batches=4"
    ):
        list(feeder.epoch(0))


def test_a_pass_longer_than_num_batches_is_an_error() -> None:
    feeder = feeders.adapt(Counting(3), num_batches=2)
    with pytest.raises(
        ValueError, match=r"more than num_batches=2 in epoch 0 \(batch 2 is extra\)"
    ):
        list(feeder.epoch(0))


def test_a_pass_unlike_the_first_is_an_error_once_the_length_is_learned() -> None:
    factory = Counting(3)
    feeder = feeders.adapt(factory)
    assert ids_of(feeder.epoch(0)) == TEN[:3]
    factory.num = 2
    with pytest.raises(
        ValueError,
        match=r"ended after 2 batches in epoch 1, but a pass has the 3 batches of its first pass",
    ):
        list(feeder.epoch(1))


def test_steps_per_epoch_beyond_num_batches_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"at most the 3 batches the source has, but got steps_per_epoch=4"
    ):
        feeders.adapt(Counting(3), num_batches=3, steps_per_epoch=4)


def test_split_of_a_single_pass_generator_is_refused() -> None:
    with pytest.raises(ValueError, match="`split` needs a callable that returns a fresh generator"):
        feeders.adapt(Counting()()).split(0.2)


def test_split_before_the_length_is_known_is_refused() -> None:
    with pytest.raises(ValueError, match=r"number of batches a pass yields, .* num_batches="):
        feeders.adapt(Counting()).split(0.2)


def test_object_arrays_in_the_first_batch_are_refused() -> None:
    ragged = np.array([np.zeros(2), np.zeros(3)], dtype=object)
    with pytest.raises(TypeError, match=r"has x of dtype object \(shape \(2,\)\)"):
        feeders.adapt(one((ragged, Y)))


def test_a_source_needs_an_iterator_or_a_callable() -> None:
    with pytest.raises(
        TypeError, match="must be an iterator or a callable returning one, but got int"
    ):
        GeneratorSource(3)  # type: ignore[arg-type]


def test_trailing_none_parts_are_dropped_as_keras_does() -> None:
    x, y = np.arange(4, dtype=np.float32)[:, None], np.arange(4)
    feeder = feeders.adapt(lambda: iter([(x, y, None), (x, y, None)]))
    batches = list(feeder.epoch(0))
    assert len(batches) == 2
    np.testing.assert_array_equal(batches[0][1], y)
    assert batches[0][2] is None


def test_a_spoiled_later_batch_fails_model_fit_naming_batch_and_field() -> None:
    import keras

    good = (np.zeros((2, 3), np.float32), Y)
    bad = (np.zeros((2, 3), np.uint8), Y)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    message = r"Batch 3 of the generator \(epoch 0\) changed x: it has dtype uint8 where batch 0"
    with pytest.raises(ValueError, match=message):
        list(feeders.adapt(one(good, good, good, bad)).epoch(0))
    # Until TF errors are unwrapped at the fit boundary, match the text (the type: above).
    with pytest.raises(Exception, match=message):
        model.fit(feeders.adapt(one(good, good, good, bad)), epochs=1, verbose=0)


def test_tensor_batches_come_out_as_numpy() -> None:
    feeder = feeders.adapt(lambda: iter([(tf.constant(X), tf.constant(Y))] * 2))
    assert all(type(b[0]) is np.ndarray and type(b[1]) is np.ndarray for b in feeder.epoch(0))
