"""The guide's multi-input, multi-output model, its compile forms and its random data.

Why it is here: the guide's ``img_input``/``ts_input`` → ``score_output``/
``class_output`` model is the reference for everything structural in a batch
(lists by position, dicts by name, per-output losses and weights, a head left
untrained). ``feeders validate`` and the tests train it through every source
kind from the same initial weights, so the model and the data must not drift.

The compile forms are the guide's, by name (:data:`COMPILE_FORMS`):

* ``"losses"``: a list of losses, one per output.
* ``"dicts"``: dicts of losses and metrics by output name.
* ``"loss_weights"``: ``"dicts"`` plus ``loss_weights={"score_output": 2.0, "class_output": 1.0}``.
* ``"none_loss"``: ``loss=[None, CategoricalCrossentropy()]``; ``score_output`` is not trained.
* ``"omitted_output"``: ``loss={"class_output": CategoricalCrossentropy()}``;
  ``score_output`` is not trained. Keras 3 accepts a loss dict that leaves an
  output out only when the model's outputs are a dict, so this form builds
  the same layers with dict outputs (see NOTE [ omitted output ]).

NOTE [ omitted output ]
Keras 3 (checked with 3.15) refuses the guide's ``loss={"class_output": ...}``
on a model whose outputs are a list ("Expected keys ['score_output',
'class_output'] in loss dict"). With dict outputs it trains, but Keras then
orders the outputs by sorted name (``class_output`` first), so a *list* of
targets would be matched to the wrong heads: give ``y`` as a dict by name.
"""

from __future__ import annotations

from typing import Any, Literal

import keras
import numpy as np

INPUTS = ("img_input", "ts_input")
OUTPUTS = ("score_output", "class_output")
COMPILE_FORMS = ("losses", "dicts", "loss_weights", "none_loss", "omitted_output")
UNTRAINED = {"none_loss": "score_output", "omitted_output": "score_output"}
"""The output each compile form leaves untrained (its weights must not change)."""
NUM_CLASSES = 5
TIMESTEPS = 20

CompileForm = Literal["losses", "dicts", "loss_weights", "none_loss", "omitted_output"]
By = Literal["name", "position"]


def multihead_model(compile_form: str | None = "losses", seed: int | None = None) -> keras.Model:
    """The guide's two-input, two-output model, compiled in one of the guide's forms.

    Args:
        compile_form: one of :data:`COMPILE_FORMS`, or ``None`` for an
            uncompiled model (to compile it yourself).
        seed: seeds the initial weights (``keras.utils.set_random_seed``) when
            given, so two calls build identical models.

    Raises:
        ValueError: ``compile_form`` is not one of :data:`COMPILE_FORMS`.
    """
    if compile_form is not None and compile_form not in COMPILE_FORMS:
        raise ValueError(
            f"`compile_form` must be one of {list(COMPILE_FORMS)} or None, but got "
            f"compile_form={compile_form!r}."
        )
    if seed is not None:
        keras.utils.set_random_seed(seed)
    layers = keras.layers
    image_input = keras.Input(shape=(32, 32, 3), name="img_input")
    timeseries_input = keras.Input(shape=(None, 10), name="ts_input")
    x1 = layers.Conv2D(3, 3)(image_input)
    x1 = layers.GlobalMaxPooling2D()(x1)
    x2 = layers.Conv1D(3, 3)(timeseries_input)
    x2 = layers.GlobalMaxPooling1D()(x2)
    x = layers.concatenate([x1, x2])
    score_output = layers.Dense(1, name="score_output")(x)
    class_output = layers.Dense(NUM_CLASSES, name="class_output")(x)
    outputs: Any = [score_output, class_output]
    if compile_form == "omitted_output":  # NOTE [ omitted output ]
        outputs = {"score_output": score_output, "class_output": class_output}
    model = keras.Model(inputs=[image_input, timeseries_input], outputs=outputs)
    if compile_form is not None:
        model.compile(optimizer=keras.optimizers.RMSprop(1e-3), **_compile_args(compile_form))
    return model


def _compile_args(form: str) -> dict[str, Any]:
    losses, metrics = keras.losses, keras.metrics
    by_name = {
        "loss": {
            "score_output": losses.MeanSquaredError(),
            "class_output": losses.CategoricalCrossentropy(),
        },
        "metrics": {
            "score_output": [metrics.MeanAbsolutePercentageError(), metrics.MeanAbsoluteError()],
            "class_output": [metrics.CategoricalAccuracy()],
        },
    }
    forms: dict[str, dict[str, Any]] = {
        "losses": {"loss": [losses.MeanSquaredError(), losses.CategoricalCrossentropy()]},
        "dicts": by_name,
        "loss_weights": {
            **by_name,
            "loss_weights": {"score_output": 2.0, "class_output": 1.0},
        },
        "none_loss": {"loss": [None, losses.CategoricalCrossentropy()]},
        "omitted_output": {"loss": {"class_output": losses.CategoricalCrossentropy()}},
    }
    return forms[form]


def multihead_data(
    num_samples: int = 128,
    *,
    seed: int = 0,
    x_by: By = "name",
    y_by: By = "name",
) -> tuple[Any, Any]:
    """The guide's random data, seeded: ``(x, y)`` as dicts by name or lists by position.

    ``img_input`` (N, 32, 32, 3) and ``ts_input`` (N, 20, 10) uniform in
    [0, 1); ``score_output`` (N, 1) uniform; ``class_output`` (N, 5) one-hot.
    All float32, so every source kind yields the same bytes.

    Args:
        num_samples: N.
        seed: the same seed gives the same arrays.
        x_by, y_by: ``"name"`` for dicts keyed by input/output name,
            ``"position"`` for lists in the model's order.
    """
    for value, arg in ((x_by, "x_by"), (y_by, "y_by")):
        if value not in ("name", "position"):
            raise ValueError(f"`{arg}` must be 'name' or 'position', but got {arg}={value!r}.")
    rng = np.random.default_rng(seed)
    img = rng.random((num_samples, 32, 32, 3), dtype=np.float32)
    ts = rng.random((num_samples, TIMESTEPS, 10), dtype=np.float32)
    score = rng.random((num_samples, 1), dtype=np.float32)
    klass = np.eye(NUM_CLASSES, dtype=np.float32)[rng.integers(0, NUM_CLASSES, num_samples)]
    return _arrange(INPUTS, (img, ts), x_by), _arrange(OUTPUTS, (score, klass), y_by)


def _arrange(names: tuple[str, ...], arrays: tuple[np.ndarray, ...], by: By) -> Any:
    if by == "position":
        return list(arrays)
    return dict(zip(names, arrays, strict=True))
