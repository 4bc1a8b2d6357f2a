"""The guide's multi-head model: through every source kind, data as lists and dicts, every compile form."""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest

from feeders.harness import multihead_data, multihead_model
from feeders.harness.multihead import COMPILE_FORMS, INPUTS, OUTPUTS, UNTRAINED
from feeders.harness.validate import RECIPES

# Keras warns on every step that a head without a loss gets no gradient; the
# "none_loss" and "omitted_output" forms leave score_output untrained on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Gradients do not exist:UserWarning")

NUM_SAMPLES, BATCH_SIZE, EPOCHS = 48, 16, 2
# (x_by, y_by) per data form. With "omitted_output" the model's outputs are a dict,
# which Keras orders by name, so y goes by name there (NOTE [ omitted output ]).
DATA = {
    form: {
        "lists": ("position", "name" if form == "omitted_output" else "position"),
        "dicts": ("name", "name"),
    }
    for form in COMPILE_FORMS
}
HEADS = ("score_output", "class_output")


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))


@functools.cache
def _keras_weights(form: str) -> list[np.ndarray]:
    """What Keras itself trains from the same initial weights on the same arrays."""
    x, y = multihead_data(NUM_SAMPLES, seed=1, x_by="position", y_by=DATA[form]["lists"][1])
    model = multihead_model(form, seed=0)
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=False, verbose=0)
    return model.get_weights()


def test_it_is_the_guides_model() -> None:
    model = multihead_model(seed=0)
    assert [t.name for t in model.inputs] == list(INPUTS)
    assert model.output_names == list(OUTPUTS)
    assert [tuple(t.shape) for t in model.inputs] == [(None, 32, 32, 3), (None, None, 10)]
    assert [type(layer).__name__ for layer in model.layers] == [
        "InputLayer",
        "InputLayer",
        "Conv2D",
        "Conv1D",
        "GlobalMaxPooling2D",
        "GlobalMaxPooling1D",
        "Concatenate",
        "Dense",
        "Dense",
    ]
    assert [w.shape for w in model.get_weights()] == [
        (3, 3, 3, 3),
        (3,),
        (3, 10, 3),
        (3,),
        (6, 1),
        (1,),
        (6, 5),
        (5,),
    ]
    assert type(model.optimizer).__name__ == "RMSprop"


def test_a_seed_gives_the_same_initial_weights() -> None:
    assert _same(multihead_model(seed=3).get_weights(), multihead_model(seed=3).get_weights())
    assert not _same(multihead_model(seed=3).get_weights(), multihead_model(seed=4).get_weights())


def test_compile_forms_are_the_guides() -> None:
    config = multihead_model("loss_weights").get_compile_config()
    assert config["loss_weights"] == {"score_output": 2.0, "class_output": 1.0}
    assert sorted(config["loss"]) == ["class_output", "score_output"]
    assert not multihead_model(None).compiled
    assert multihead_model("omitted_output").output_names == ["class_output", "score_output"]


def test_an_unknown_compile_form_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"`compile_form` must be one of \['losses', .*compile_form='list'"
    ):
        multihead_model("list")


def test_the_data_is_the_guides_shapes_seeded_and_one_hot() -> None:
    x, y = multihead_data(10, seed=2)
    assert {k: v.shape for k, v in x.items()} == {
        "img_input": (10, 32, 32, 3),
        "ts_input": (10, 20, 10),
    }
    assert {k: v.shape for k, v in y.items()} == {"score_output": (10, 1), "class_output": (10, 5)}
    assert {v.dtype for v in (*x.values(), *y.values())} == {np.dtype("float32")}
    np.testing.assert_array_equal(y["class_output"].sum(axis=1), np.ones(10))
    x_list, y_list = multihead_data(10, seed=2, x_by="position", y_by="position")
    assert _same(x_list, list(x.values())) and _same(y_list, list(y.values()))
    assert not _same(x_list, multihead_data(10, seed=3, x_by="position")[0])


def test_the_data_form_is_checked() -> None:
    with pytest.raises(
        ValueError, match=r"`y_by` must be 'name' or 'position', but got y_by='dict'"
    ):
        multihead_data(4, y_by="dict")  # type: ignore[arg-type]


@functools.cache
def _compiled(form: str) -> tuple[keras.Model, list[np.ndarray], list[np.ndarray]]:
    model = multihead_model(form, seed=0)
    model.optimizer.build(model.trainable_variables)
    return model, model.get_weights(), [v.numpy() for v in model.optimizer.variables]


def _fresh(form: str) -> keras.Model:
    """The form's model, back at its initial weights and optimizer state.

    Why not a new model each time: tracing a new model's train step costs
    more than training it here; the comparison with Keras' own fit of a new
    model (``_keras_weights``) shows the reset is exact.
    """
    model, weights, optimizer_state = _compiled(form)
    model.set_weights(weights)
    for variable, value in zip(model.optimizer.variables, optimizer_state, strict=True):
        variable.assign(value)
    return model


@pytest.mark.parametrize("recipe", list(RECIPES))
@pytest.mark.parametrize("form", COMPILE_FORMS)
def test_trains_through_every_source_kind(form: str, recipe: str) -> None:
    """Losses fall; lists and dicts train Keras' own weights; an untrained head stays put."""
    initial = {head: _fresh(form).get_layer(head).get_weights() for head in HEADS}
    trained = {}
    for data_form, (x_by, y_by) in DATA[form].items():
        x, y = multihead_data(NUM_SAMPLES, seed=1, x_by=x_by, y_by=y_by)
        model = _fresh(form)
        with RECIPES[recipe](x, y, BATCH_SIZE) as feeder:
            history = model.fit(feeder.bind(model), epochs=EPOCHS, verbose=0)
        assert history.history["loss"][-1] < history.history["loss"][0], data_form
        trained[data_form] = model.get_weights()
        heads = {head: model.get_layer(head).get_weights() for head in HEADS}

    assert _same(trained["lists"], trained["dicts"])
    assert _same(trained["dicts"], _keras_weights(form))
    changed = {head: not _same(initial[head], heads[head]) for head in HEADS}
    assert changed == {head: head != UNTRAINED.get(form) for head in HEADS}


def test_keras_cannot_omit_an_output_of_a_list_output_model() -> None:
    """Why "omitted_output" builds dict outputs: Keras 3 refuses the guide's dict otherwise."""
    model = multihead_model(None, seed=0)
    model.compile(
        optimizer="rmsprop", loss={"class_output": keras.losses.CategoricalCrossentropy()}
    )
    x, y = multihead_data(8, seed=0, x_by="position", y_by="position")
    with pytest.raises(ValueError, match="Expected keys"):
        model.fit(x, y, verbose=0)
