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
