"""Fails loudly when Keras moves the internals feeders relies on (see feeders/keras_glue.py)."""

from __future__ import annotations

import numpy as np

import feeders
from feeders import keras_glue


def test_keras_returns_a_feeder_unchanged_as_its_data_adapter() -> None:
    feeder = feeders.adapt(np.zeros((4, 2)), batch_size=2)
    assert isinstance(feeder, keras_glue.DataAdapter)
    assert keras_glue.get_data_adapter(feeder) is feeder


def test_data_adapter_has_the_methods_feeder_overrides() -> None:
    for name in (
        "get_numpy_iterator",
        "get_tf_dataset",
        "get_jax_iterator",
        "num_batches",
        "batch_size",
        "has_partial_batch",
        "partial_batch_size",
        "on_epoch_begin",
        "on_epoch_end",
    ):
        assert hasattr(keras_glue.DataAdapter, name), name


def test_outputs_are_a_dict_reads_the_model_structure() -> None:
    import keras

    inputs = keras.Input((2,))
    a, b = keras.layers.Dense(1, name="a")(inputs), keras.layers.Dense(1, name="b")(inputs)
    assert keras_glue.outputs_are_a_dict(keras.Model(inputs, {"b": b, "a": a}))
    assert not keras_glue.outputs_are_a_dict(keras.Model(inputs, [b, a]))


def test_the_hooks_are_installed_where_keras_looks_them_up() -> None:
    import inspect

    from keras.src.backend.tensorflow import trainer as tf_trainer
    from keras.src.trainers import data_adapters, epoch_iterator
    from keras.src.trainers.data_adapters import array_slicing

    assert data_adapters.get_data_adapter is keras_glue.get_data_adapter
    assert "data_adapters.get_data_adapter(" in inspect.getsource(epoch_iterator.EpochIterator)
    assert epoch_iterator.EpochIterator.catch_stop_iteration is keras_glue._catch_stop_iteration
    assert "super().catch_stop_iteration()" in inspect.getsource(tf_trainer.TFEpochIterator)
    assert array_slicing.train_validation_split is keras_glue._train_validation_split
    assert "array_slicing.train_validation_split(" in inspect.getsource(tf_trainer)


def test_a_feeder_learns_which_keras_method_asked_and_whether_it_trains() -> None:
    import keras

    calls: list[keras_glue.KerasCall] = []

    class Listening(feeders.Feeder):
        def for_keras(self, call: keras_glue.KerasCall):
            calls.append(call)
            return super().for_keras(call)

    x = np.zeros((8, 2), "float32")
    train = Listening(feeders.adapt(x, np.zeros(8, "int64"), batch_size=4).source)
    val = Listening(feeders.adapt(x, np.zeros(8, "int64"), batch_size=4).source)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(train, validation_data=val, shuffle=False, class_weight={0: 2.0}, verbose=0)
    model.evaluate(val, verbose=0)
    model.predict(val, verbose=0)
    seen = [(c.method, c.training, c.shuffle, c.class_weight) for c in calls]
    assert seen == [
        ("fit", True, False, {0: 2.0}),
        ("fit", False, False, None),
        ("evaluate", False, False, None),
        ("predict", False, False, None),
    ]
