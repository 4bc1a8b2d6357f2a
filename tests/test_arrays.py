"""The arrays source: batching, casting, splitting, and every bad input."""

from __future__ import annotations

import numpy as np
import pytest

import feeders


def test_unshuffled_batches_are_views_not_copies() -> None:
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    x_batch, _, _ = next(feeders.adapt(x, batch_size=4, shuffle=False).epoch(0))
    assert np.shares_memory(x_batch, x)


def test_float64_is_cast_per_batch_and_ints_are_kept() -> None:
    x = np.ones((5, 2), dtype=np.float64)
    y = np.arange(5, dtype=np.int32)
    x_batch, y_batch, _ = next(feeders.adapt(x, y, batch_size=2).epoch(0))
    assert (x_batch.dtype, y_batch.dtype) == (np.float32, np.int32)
    assert x.dtype == np.float64


def test_drop_remainder_drops_the_partial_batch() -> None:
    feeder = feeders.adapt(np.zeros((10, 1)), batch_size=4, drop_remainder=True)
    assert [len(b[0]) for b in feeder.epoch(0)] == [4, 4]
    assert feeder.num_batches == 2
    assert feeder.as_dataset().element_spec[0].shape.as_list() == [4, 1]


def test_element_spec_is_exact_for_dicts_and_partial_batches() -> None:
    import tensorflow as tf

    x = {"image": np.zeros((5, 4, 4, 3), np.uint8), "ts": np.zeros((5, 7, 10), np.float64)}
    y = [np.zeros((5, 1), np.float32), np.zeros(5, np.int64)]
    feeder = feeders.adapt(x, y, batch_size=2)
    assert feeder.as_dataset().element_spec == (
        {
            "image": tf.TensorSpec((None, 4, 4, 3), tf.uint8),
            "ts": tf.TensorSpec((None, 7, 10), tf.float32),
        },
        (tf.TensorSpec((None, 1), tf.float32), tf.TensorSpec((None,), tf.int64)),
    )
    first = next(iter(feeder.as_dataset()))
    assert first[0]["ts"].shape == (2, 7, 10)


def test_split_takes_the_last_samples_before_shuffling() -> None:
    x = np.arange(100, dtype=np.float32)[:, None]
    train, val = feeders.adapt(x, batch_size=8, seed=1).split(10)
    val_ids = np.concatenate([b[0][:, 0] for b in val.epoch(0)])
    np.testing.assert_array_equal(val_ids, np.arange(90, 100))
    train_ids = np.concatenate([b[0][:, 0] for b in train.epoch(0)])
    np.testing.assert_array_equal(np.sort(train_ids), np.arange(90))
    assert not np.array_equal(train_ids, np.arange(90))


def test_split_fraction_matches_keras_validation_split() -> None:
    _, val = feeders.adapt(np.zeros((101, 1))).split(0.2)
    assert sum(len(b[0]) for b in val.epoch(0)) == 101 - int(np.floor(101 * 0.8))


def test_split_keeps_sample_weight_but_not_class_weight_for_validation() -> None:
    y = np.array([0, 1] * 10)
    train, val = feeders.adapt(
        np.zeros((20, 1)), y, class_weight={0: 1.0, 1: 3.0}, shuffle=False
    ).split(4)
    assert next(val.epoch(0))[2] is None
    np.testing.assert_array_equal(next(train.epoch(0))[2][:2], [1.0, 3.0])


def test_seed_none_is_drawn_once_and_kept() -> None:
    source = feeders.adapt(np.zeros((50, 1))).source
    assert isinstance(source.seed, int)
    np.testing.assert_array_equal(source.order(3), source.order(3))


# -- bad input: each names the argument, shows shapes, gives the fix ------------------


def test_length_mismatch() -> None:
    with pytest.raises(ValueError, match=r"same number of samples, but got x: 10, y: 9"):
        feeders.adapt(np.zeros((10, 2)), np.zeros(9))


@pytest.mark.parametrize("bad", [0, -3, True, 1.5])
def test_bad_batch_size(bad: object) -> None:
    with pytest.raises(
        ValueError,
        match=rf"`batch_size` should be a positive integer value, but got batch_size={bad!r}",
    ):
        feeders.adapt(np.zeros((10, 2)), batch_size=bad)


@pytest.mark.parametrize("bad", [0, 10, 11, -1, 0.0, 1.0])
def test_bad_split_size(bad: float) -> None:
    with pytest.raises(ValueError, match=rf"0 < count < 10 samples.*split={bad!r}"):
        feeders.adapt(np.zeros((10, 2))).split(bad)


def test_empty_arrays() -> None:
    with pytest.raises(ValueError, match=r"`x` is empty \(0 samples, shapes \[\(0, 3\)\]\)"):
        feeders.adapt(np.zeros((0, 3)))


def test_class_weight_missing_a_label_present_in_y() -> None:
    feeder = feeders.adapt(np.zeros((4, 1)), np.array([0, 1, 2, 1]), class_weight={0: 1.0, 1: 1.0})
    with pytest.raises(ValueError, match=r"no weight for class\(es\) \[2\]"):
        list(feeder.epoch(0))


def test_class_weight_on_float_targets() -> None:
    feeder = feeders.adapt(np.zeros((3, 1)), np.array([0.1, 0.7, 2.0]), class_weight={0: 1.0})
    with pytest.raises(ValueError, match="needs integer class labels"):
        list(feeder.epoch(0))


@pytest.mark.parametrize("bad", [-0.5, np.nan, np.inf])
def test_bad_sample_weight_values(bad: float) -> None:
    with pytest.raises(ValueError, match=r"`sample_weight` must be finite and non-negative"):
        feeders.adapt(np.zeros((3, 1)), np.zeros(3), sample_weight=np.array([1.0, bad, 1.0]))


def test_sample_weight_shape_mismatch() -> None:
    with pytest.raises(
        ValueError, match=r"`sample_weight` must have shape.*\(6, 2\).*got shape \(6, 3\)"
    ):
        feeders.adapt(np.zeros((6, 1)), np.zeros((6, 2)), sample_weight=np.ones((6, 3)))


def test_unsupported_source_lists_the_kinds() -> None:
    with pytest.raises(
        TypeError,
        match=r"`source` of type builtins.str is not supported; supported kinds: arrays, tf.data, torch DataLoader, grain, sequence, generator",
    ):
        feeders.adapt("mnist.npz")


def test_unknown_option_is_refused_not_ignored() -> None:
    with pytest.raises(TypeError, match=r"\['workers'\] are not options of 'arrays' sources"):
        feeders.adapt(np.zeros((3, 1)), workers=2)


def test_object_arrays_are_refused() -> None:
    with pytest.raises(TypeError, match=r"`x` has dtype object \(shape \(2,\)\)"):
        feeders.adapt(np.array([np.zeros(2), np.zeros(3)], dtype=object))


@pytest.mark.parametrize("drop_remainder", [False, True])
def test_tf_path_gives_the_numpy_paths_batches_epoch_by_epoch(drop_remainder: bool) -> None:
    x = {"a": np.arange(46, dtype=np.float64)[:, None], "b": np.arange(46, dtype=np.int32)}
    y = [np.arange(46) % 3, np.arange(46, dtype=np.float32)]
    w = np.linspace(0, 1, 46)
    reference = feeders.adapt(
        x, y, sample_weight=w, batch_size=8, seed=2, drop_remainder=drop_remainder
    )
    feeder = feeders.adapt(
        x, y, sample_weight=w, batch_size=8, seed=2, drop_remainder=drop_remainder
    )
    dataset = feeder.as_dataset()
    for epoch in range(2):
        got = list(dataset.as_numpy_iterator())
        want = list(reference.epoch(epoch))
        assert len(got) == len(want) == reference.num_batches
        for (gx, gy, gw), (wx, wy, ww) in zip(got, want, strict=True):
            np.testing.assert_array_equal(gx["a"], wx["a"])
            np.testing.assert_array_equal(gx["b"], wx["b"])
            np.testing.assert_array_equal(gy[0], wy[0])
            np.testing.assert_array_equal(gy[1], wy[1])
            np.testing.assert_array_equal(gw, ww)
            assert gx["a"].dtype == wx["a"].dtype == np.float32


def test_tf_path_resumes_at_the_sought_batch() -> None:
    x = np.arange(30, dtype=np.float32)[:, None]
    feeder = feeders.adapt(x, batch_size=4, seed=1)
    feeder.seek(3, 5)
    got = [b[0][:, 0].tolist() for b in feeder.as_dataset().as_numpy_iterator()]
    want = [b[0][:, 0].tolist() for b in feeders.adapt(x, batch_size=4, seed=1).epoch(3, 5)]
    assert got == want
    assert feeder.position == (4, 0)


def test_nested_structures_round_trip() -> None:
    x = {"a": [np.arange(6.0)[:, None], np.arange(6)], "b": np.ones((6, 2))}
    (bx, by, _) = next(feeders.adapt(x, np.arange(6), batch_size=4, shuffle=False).epoch(0))
    np.testing.assert_array_equal(bx["a"][0][:, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(bx["a"][1], [0, 1, 2, 3])
    assert bx["b"].shape == (4, 2)
    np.testing.assert_array_equal(by, [0, 1, 2, 3])
