"""The weights module: class_weight × sample_weight, per output, vectorised."""

from __future__ import annotations

import numpy as np
import pytest

import feeders
from feeders.structure import check_sample_weight_shape, check_weights
from feeders.weights import Weighting, class_labels


def test_sparse_labels_look_up_their_class_weight() -> None:
    y = np.array([0, 2, 1, 2])
    w = Weighting({0: 1.0, 1: 0.5, 2: 3.0}, y)(y, None)
    np.testing.assert_array_equal(w, np.array([1.0, 3.0, 0.5, 3.0], np.float32))
    assert w.dtype == np.float32


def test_one_hot_labels_use_their_argmax() -> None:
    y = np.eye(3, dtype=np.float32)[[2, 0, 1]]
    w = Weighting({0: 1.0, 1: 2.0, 2: 4.0}, y)(y, None)
    np.testing.assert_array_equal(w, [4.0, 1.0, 2.0])


def test_trailing_axis_of_one_is_sparse() -> None:
    y = np.array([[1], [0]], dtype=np.float32)
    np.testing.assert_array_equal(Weighting({0: 5.0, 1: 7.0}, y)(y, None), [7.0, 5.0])


def test_per_timestep_class_indices_get_per_timestep_weights() -> None:
    y = np.array([[0, 1, 1], [1, 0, 0]])[..., None]  # (n, timesteps, 1), as Keras reads them
    w = Weighting({0: 1.0, 1: 10.0}, y)(y, None)
    np.testing.assert_array_equal(w, [[1, 10, 10], [10, 1, 1]])


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.uint8, np.bool_])
def test_one_hot_integer_or_bool_labels_get_keras_weights(dtype: type) -> None:
    y = np.eye(3, dtype=dtype)[[0, 1, 0, 2]]
    w = Weighting({0: 1, 1: 2, 2: 3}, y)(y, None)
    np.testing.assert_array_equal(w, [1, 2, 1, 3])
    assert w.shape == (4,)


def test_integer_rows_that_are_not_one_hot_are_refused() -> None:
    y = np.array([[0, 1, 1], [1, 0, 0]])
    with pytest.raises(
        ValueError,
        match=r"reads y \(shape \(2, 3\), dtype int64\) as one-hot rows.* row \(0,\) is \[0, 1, 1\].*y\[\.\.\., None\]",
    ):
        Weighting({0: 1.0, 1: 10.0}, y)(y, None)


def test_an_empty_class_weight_is_refused() -> None:
    with pytest.raises(ValueError, match=r"but got class_weight=\{\} \(no classes\)"):
        Weighting({}, np.array([0, 1]))


def test_class_weight_and_sample_weight_multiply() -> None:
    y = np.array([0, 1, 1])
    w = Weighting({0: 2.0, 1: 3.0}, y)(y, np.array([1.0, 0.5, 0.0]))
    np.testing.assert_array_equal(w, [2.0, 1.5, 0.0])


def test_per_output_class_weight_by_name_leaves_other_outputs_at_sample_weight() -> None:
    y = {"score": np.array([0.3, 0.1]), "klass": np.array([4, 0])}
    weighting = Weighting({"klass": {0: 1.0, 4: 2.0}}, y)
    w = weighting(y, np.array([0.5, 1.0], np.float32))
    np.testing.assert_array_equal(w["klass"], [1.0, 1.0])
    np.testing.assert_array_equal(w["score"], [0.5, 1.0])


def test_per_output_class_weight_for_list_targets_uses_bound_output_names() -> None:
    y = [np.array([1.0, 2.0]), np.array([1, 0])]
    w = Weighting({"class_output": {0: 3.0, 1: 1.0}}, y, ["score_output", "class_output"])(y, None)
    np.testing.assert_array_equal(w[0], [1.0, 1.0])
    np.testing.assert_array_equal(w[1], [1.0, 3.0])


def test_missing_class_is_an_error_naming_it() -> None:
    y = np.array([0, 1, 7])
    with pytest.raises(
        ValueError, match=r"no weight for class\(es\) \[7\] found in y.*covers classes \[0, 1\]"
    ):
        Weighting({0: 1.0, 1: 2.0}, y)(y, None)


def test_non_integer_float_labels_are_refused() -> None:
    with pytest.raises(
        ValueError, match=r"`class_weight` needs integer class labels.*shape \(2,\)"
    ):
        class_labels(np.array([0.5, 1.0]), "class_weight", "y")


def test_single_map_on_several_outputs_asks_for_names() -> None:
    y = [np.array([0]), np.array([1])]
    with pytest.raises(ValueError, match="applies to a single output, but y has 2 outputs"):
        Weighting({0: 1.0}, y)


def test_unknown_output_name_lists_valid_names() -> None:
    y = {"a": np.array([0]), "b": np.array([1])}
    with pytest.raises(
        ValueError, match=r"output\(s\) \['c'\].*valid output names are \['a', 'b'\]"
    ):
        Weighting({"c": {0: 1.0}}, y)


def test_class_weight_keys_must_be_integers() -> None:
    with pytest.raises(TypeError, match="keys must be integer class indices"):
        Weighting({0.5: 1.0}, np.array([0]))


@pytest.mark.parametrize(("bad", "what"), [(-1.0, "-1.0"), (np.nan, "nan"), (np.inf, "inf")])
def test_bad_weight_values_are_refused(bad: float, what: str) -> None:
    with pytest.raises(
        ValueError, match=rf"`sample_weight` must be finite and non-negative.*1 bad.*{what}"
    ):
        check_weights(np.array([1.0, bad, 2.0]), "sample_weight")
    with pytest.raises(ValueError, match=r"`class_weight` must be finite and non-negative"):
        Weighting({0: 1.0, 1: bad}, np.array([0, 1]))


def test_sample_weight_shape_must_match_its_output() -> None:
    with pytest.raises(
        ValueError, match=r"`sample_weight` must have shape \(n,\).*\(4,\).*got shape \(3,\)"
    ):
        check_sample_weight_shape(np.ones(3), np.zeros(4))
    with pytest.raises(ValueError, match=r"has 1 per-output arrays but y has 2 outputs"):
        check_sample_weight_shape([np.ones(4)], [np.zeros(4), np.zeros(4)])


def test_no_per_sample_python_loop_for_large_batches() -> None:
    y = np.random.default_rng(0).integers(0, 10, size=1_000_000)
    w = Weighting({c: float(c + 1) for c in range(10)}, y)(y, None)
    np.testing.assert_array_equal(w, (y + 1).astype(np.float32))


# -- through fit: the weights Keras itself gives ----------------------------------
def one_hot_model(log: object) -> object:
    import keras

    from tests.test_tf_data import Seen

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy", weighted_metrics=[Seen(log)], run_eagerly=True)
    return model


@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_one_hot_integer_labels_train_with_keras_class_weights(dtype: type) -> None:
    import tensorflow as tf

    from tests.test_tf_data import BatchLog

    x = np.zeros((4, 1), np.float32)
    y = np.eye(3, dtype=dtype)[[0, 1, 0, 2]]
    weights = {0: 1.0, 1: 2.0, 2: 3.0}
    keras_log, arrays_log, dataset_log = BatchLog(), BatchLog(), BatchLog()
    one_hot_model(keras_log).fit(
        x,
        y.astype(np.float32),
        batch_size=4,
        shuffle=False,
        class_weight=weights,
        verbose=0,
        callbacks=[keras_log],
    )
    arrays = feeders.adapt(x, y, batch_size=4, shuffle=False, class_weight=weights)
    one_hot_model(arrays_log).fit(arrays, verbose=0, callbacks=[arrays_log])
    dataset = feeders.adapt(tf.data.Dataset.from_tensors((x, y)), class_weight=weights)
    one_hot_model(dataset_log).fit(dataset, verbose=0, callbacks=[dataset_log])
    assert keras_log.weights == arrays_log.weights == dataset_log.weights == [[1, 2, 1, 3]]


def test_a_class_weight_that_misses_a_label_fails_before_fit_as_a_value_error() -> None:
    import keras

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = np.zeros((6, 1), np.float32), np.array([0, 1, 2, 0, 1, 2])
    with pytest.raises(ValueError, match=r"no weight for class\(es\) \[2\] found in y"):
        model.fit(feeders.adapt(x, y, class_weight={0: 1.0, 1: 1.0}), verbose=0)
