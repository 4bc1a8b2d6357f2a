"""Multi-input, multi-output: lists and dicts, per-output losses and metrics, loss_weights, a None loss.

Guide section "Passing data to multi-input, multi-output models", with the
guide's model (``feeders.harness.multihead_model``): an image and a time
series in, a score and a 5-class prediction out. The data goes through
feeders as lists (by position) and as dicts (by input/output name); from the
same initial weights, unshuffled, both train identical weights. The model
diagram is written with ``keras.utils.plot_model`` when pydot and graphviz
are installed.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from _shared import parse_args

import feeders
from feeders.harness import multihead_data, multihead_model

args = parse_args(__doc__, out=dict(default=None, help="folder for the model diagram"))
num_samples = 1_000 if args.full else 128
# A head with no loss gets no gradient, and Keras warns about it each epoch: expected here.
warnings.filterwarnings("ignore", message="Gradients do not exist", category=UserWarning)

model = multihead_model(compile_form=None, seed=0)
out = Path(args.out or tempfile.gettempdir()) / "multi_input_and_output_model.png"
try:
    keras.utils.plot_model(model, str(out), show_shapes=True)
    print(f"model diagram: {out}")
except ImportError as err:
    print(
        "model diagram skipped: keras.utils.plot_model needs pydot and graphviz "
        f"(Keras says: {err}). Install them with `pip install pydot` and the graphviz "
        "package of your system (Debian/Ubuntu: `sudo apt-get install graphviz`)."
    )

img_data, ts_data = multihead_data(num_samples, seed=0, x_by="position")[0]
score_targets, class_targets = multihead_data(num_samples, seed=0, y_by="position")[1]


def fresh(**compile_args):
    """The guide's model, compiled as given, from the same initial weights every time."""
    model = multihead_model(compile_form=None, seed=0)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3), **compile_args)
    return model


def report(name, history):
    parts = ", ".join(f"{k} {v[-1]:.4f}" for k, v in sorted(history.history.items()))
    print(f"{name}: {parts}")


# A list of losses, data as lists (by position).
model = fresh(loss=[keras.losses.MeanSquaredError(), keras.losses.CategoricalCrossentropy()])
lists = feeders.adapt(
    [img_data, ts_data], [score_targets, class_targets], batch_size=32, shuffle=False
)
report("lists", model.fit(lists, epochs=2, verbose=0))
by_position = model.get_weights()

# The same data as dicts (by name).
model = fresh(loss=[keras.losses.MeanSquaredError(), keras.losses.CategoricalCrossentropy()])
dicts = feeders.adapt(
    {"img_input": img_data, "ts_input": ts_data},
    {"score_output": score_targets, "class_output": class_targets},
    batch_size=32,
    shuffle=False,
)
report("dicts", model.fit(dicts.bind(model), epochs=2, verbose=0))
same = all(np.array_equal(a, b) for a, b in zip(by_position, model.get_weights(), strict=True))
print(f"lists and dicts train identical weights: {same}")

# Dicts of losses and metrics, and loss_weights, from a tf.data pipeline of dicts.
model = fresh(
    loss={
        "score_output": keras.losses.MeanSquaredError(),
        "class_output": keras.losses.CategoricalCrossentropy(),
    },
    metrics={
        "score_output": [
            keras.metrics.MeanAbsolutePercentageError(),
            keras.metrics.MeanAbsoluteError(),
        ],
        "class_output": [keras.metrics.CategoricalAccuracy()],
    },
    loss_weights={"score_output": 2.0, "class_output": 1.0},
)
train_dataset = tf.data.Dataset.from_tensor_slices(
    (
        {"img_input": img_data, "ts_input": ts_data},
        {"score_output": score_targets, "class_output": class_targets},
    )
)
train_dataset = train_dataset.shuffle(buffer_size=1024).batch(64)
report("loss_weights (tf.data)", model.fit(feeders.adapt(train_dataset), epochs=2, verbose=0))

# A None loss: score_output is not trained, so its weights do not change.
model = fresh(loss=[None, keras.losses.CategoricalCrossentropy()])
before = model.get_layer("score_output").get_weights()
report("None loss", model.fit(lists, epochs=2, verbose=0))
after = model.get_layer("score_output").get_weights()
unchanged = all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
print(f"score_output unchanged with a None loss: {unchanged}")

# The guide's dict form leaves the output out. Keras 3 accepts that only for a model
# whose outputs are a dict (multihead_model's "omitted_output" form); y by name.
dict_model = multihead_model("omitted_output", seed=0)
before = dict_model.get_layer("score_output").get_weights()
report("omitted output", dict_model.fit(dicts, epochs=2, verbose=0))
after = dict_model.get_layer("score_output").get_weights()
unchanged = all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
print(f"score_output unchanged with the output omitted: {unchanged}")
