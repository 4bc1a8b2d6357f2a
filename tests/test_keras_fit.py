"""Feeders in model.fit/evaluate/predict: same results as Keras on the same data."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import feeders
from feeders.harness import mnist_model


@pytest.fixture(scope="module")
def mnist_small() -> tuple[np.ndarray, np.ndarray]:
    (x, y), _ = feeders.datasets.load_mnist()
    return x[:1280].reshape(-1, 784).astype("float32") / 255, y[:1280]


def _same_weights(a: keras.Model, b: keras.Model) -> bool:
    return all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights(), strict=True))


def test_fit_with_sample_weight_is_bit_identical_to_keras(mnist_small) -> None:
    x, y = mnist_small
    w = np.random.default_rng(0).random(len(x)).astype("float32")
    ours, theirs = mnist_model(seed=1), mnist_model(seed=1)
    assert _same_weights(ours, theirs)
    ours.fit(
        feeders.adapt(x, y, sample_weight=w, shuffle=False, batch_size=64), epochs=2, verbose=0
    )
    theirs.fit(x, y, sample_weight=w, shuffle=False, batch_size=64, epochs=2, verbose=0)
    assert _same_weights(ours, theirs)


def test_fit_with_class_weight_is_bit_identical_to_keras(mnist_small) -> None:
    x, y = mnist_small
    class_weight = {c: 1.0 + c / 4 for c in range(10)}
    ours, theirs = mnist_model(seed=2), mnist_model(seed=2)
    ours.fit(
        feeders.adapt(x, y, class_weight=class_weight, shuffle=False, batch_size=64),
        epochs=1,
        verbose=0,
    )
    theirs.fit(x, y, class_weight=class_weight, shuffle=False, batch_size=64, epochs=1, verbose=0)
    assert _same_weights(ours, theirs)


def test_a_different_class_weight_changes_training(mnist_small) -> None:
    x, y = mnist_small
    ours, theirs = mnist_model(seed=2), mnist_model(seed=2)
    ours.fit(
        feeders.adapt(x, y, class_weight={c: 1.0 for c in range(10)}, shuffle=False), verbose=0
    )
    theirs.fit(x, y, class_weight={c: 1.0 + c for c in range(10)}, shuffle=False, verbose=0)
    assert not _same_weights(ours, theirs)


def _two_output_model() -> keras.Model:
    keras.utils.set_random_seed(3)
    inputs = keras.Input((4,), name="features")
    score = keras.layers.Dense(1, name="score_output")(inputs)
    klass = keras.layers.Dense(3, activation="softmax", name="class_output")(inputs)
    model = keras.Model({"features": inputs}, {"score_output": score, "class_output": klass})
    model.compile(
        optimizer="sgd",
        loss={"score_output": "mse", "class_output": "sparse_categorical_crossentropy"},
    )
    return model


def test_per_output_class_weight_gives_the_hand_computed_loss() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(12, 4)).astype("float32")
    y = {
        "score_output": rng.normal(size=(12, 1)).astype("float32"),
        "class_output": rng.integers(0, 3, 12),
    }
    class_weight = {"class_output": {0: 1.0, 1: 2.0, 2: 5.0}}
    model = _two_output_model()
    feeder = feeders.adapt(
        {"features": x}, y, class_weight=class_weight, batch_size=12, shuffle=False
    )
    loss = model.evaluate(feeder.bind(model), verbose=0, return_dict=True)["loss"]

    pred = model.predict({"features": x}, verbose=0)
    mse = np.mean((pred["score_output"] - y["score_output"]) ** 2, axis=-1)
    ce = -np.log(pred["class_output"][np.arange(12), y["class_output"]])
    w = np.array([1.0, 2.0, 5.0])[y["class_output"]]
    expected = mse.mean() + (ce * w).mean()
    assert loss == pytest.approx(expected, rel=1e-5)
    assert loss != pytest.approx(mse.mean() + ce.mean(), rel=1e-3)


def test_bind_rejects_unknown_and_missing_keys() -> None:
    model = _two_output_model()
    feeder = feeders.adapt(
        {"feature": np.zeros((2, 4))}, {"score_output": np.zeros(2), "class_output": np.zeros(2)}
    )
    with pytest.raises(
        ValueError,
        match=r"`x` keys must match the model's input names \['features'\].*unknown: \['feature'\], missing: \['features'\]",
    ):
        feeder.bind(model)
    feeder = feeders.adapt(
        {"features": np.zeros((2, 4))}, {"score": np.zeros(2), "class_output": np.zeros(2)}
    )
    with pytest.raises(
        ValueError,
        match=r"`y` keys must match the model's output names \['class_output', 'score_output'\]",
    ):
        feeder.bind(model)


def test_bind_rejects_a_list_of_the_wrong_length() -> None:
    model = _two_output_model()
    feeder = feeders.adapt({"features": np.zeros((2, 4))}, [np.zeros(2)])
    with pytest.raises(ValueError, match=r"`y` is a list of 1 arrays but the model has 2 outputs"):
        feeder.bind(model)


def test_evaluate_and_predict_take_a_feeder(mnist_small) -> None:
    x, y = mnist_small
    model = mnist_model(seed=0)
    feeder = feeders.adapt(x, y, batch_size=100, shuffle=False)
    assert model.predict(feeder, verbose=0).shape == (len(x), 10)
    ours = model.evaluate(feeder, verbose=0)
    theirs = model.evaluate(x, y, batch_size=100, verbose=0)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_each_fit_epoch_is_the_next_seeded_epoch() -> None:
    x = np.arange(40, dtype="float32")[:, None]
    feeder = feeders.adapt(x, np.zeros(40), batch_size=8, seed=5)
    seen = [np.concatenate([b[0][:, 0] for b in pass_]) for pass_ in (list(feeder), list(feeder))]
    expected = [np.concatenate([b[0][:, 0] for b in feeder.epoch(n)]) for n in (0, 1)]
    np.testing.assert_array_equal(seen[0], expected[0])
    np.testing.assert_array_equal(seen[1], expected[1])
    assert feeder.position == (2, 0)


def test_steps_per_epoch_continues_across_epochs_without_reset() -> None:
    x = np.arange(50, dtype="float32")[:, None]
    feeder = feeders.adapt(x, batch_size=10, shuffle=False, steps_per_epoch=3)
    passes = [[int(b[0][0, 0]) for b in feeder] for _ in range(3)]
    assert passes == [[0, 10, 20], [30, 40, 0], [10, 20, 30]]
    assert feeder.num_batches == 3


def test_fit_with_steps_per_epoch_trains_that_many_steps(mnist_small) -> None:
    x, y = mnist_small
    model = mnist_model(seed=0)
    feeder = feeders.adapt(x, y, batch_size=64, steps_per_epoch=7)
    history = model.fit(feeder, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3
    assert model.optimizer.iterations.numpy() == 21


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_steps_per_epoch(bad: object) -> None:
    with pytest.raises(
        ValueError,
        match=rf"`steps_per_epoch` must be a positive integer or None, but got steps_per_epoch={bad!r}",
    ):
        feeders.adapt(np.zeros((4, 1)), steps_per_epoch=bad)


def test_adapt_with_model_binds_at_once() -> None:
    model = _two_output_model()
    with pytest.raises(
        ValueError, match=r"`x` keys must match the model's input names \['features'\]"
    ):
        feeders.adapt(
            {"image": np.zeros((2, 4))},
            {"score_output": np.zeros(2), "class_output": np.zeros(2)},
            model=model,
        )


def test_bind_refuses_list_targets_for_dict_outputs() -> None:
    model = _two_output_model()
    feeder = feeders.adapt({"features": np.zeros((2, 4))}, [np.zeros((2, 1)), np.zeros(2)])
    with pytest.raises(
        ValueError,
        match=r"`y` is a list, but the model's outputs are a dict \['class_output', 'score_output'\]",
    ):
        feeder.bind(model)
