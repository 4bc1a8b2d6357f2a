"""The guide's first end-to-end example: MNIST through feeders, fit, evaluate, predict.

Keras guide "Training & evaluation with the built-in methods", section "API
overview: a first end-to-end example", with each NumPy array handed to Keras
through ``feeders.adapt``. Run: ``python examples/01_end_to_end_mnist.py [--full]``.
"""

from __future__ import annotations

import keras
from _shared import mnist, parse_args

import feeders
from feeders.harness.mnist import validation_size

args = parse_args(__doc__)
x_train, y_train, x_test, y_test = mnist(args.full)

# Reserve the last 10,000 training samples for validation (a sixth on a quick run).
held_out = validation_size(len(x_train))
x_val, y_val = x_train[-held_out:], y_train[-held_out:]
x_train, y_train = x_train[:-held_out], y_train[:-held_out]

inputs = keras.Input(shape=(784,), name="digits")
x = keras.layers.Dense(64, activation="relu", name="dense_1")(inputs)
x = keras.layers.Dense(64, activation="relu", name="dense_2")(x)
outputs = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
model = keras.Model(inputs=inputs, outputs=outputs)
model.compile(
    optimizer=keras.optimizers.RMSprop(),  # Optimizer
    loss=keras.losses.SparseCategoricalCrossentropy(),  # Loss function to minimize
    metrics=[keras.metrics.SparseCategoricalAccuracy()],  # List of metrics to monitor
)

# The feeders: shuffled with a seed (a new order every epoch), validation unshuffled.
train = feeders.adapt(x_train, y_train, batch_size=64, shuffle=True, seed=0)
val = feeders.adapt(x_val, y_val, batch_size=64, shuffle=False)
print(f"Fit model on training data ({len(x_train):,} train / {len(x_val):,} validation)")
history = model.fit(train, epochs=2, validation_data=val, verbose=0)
for epoch, (loss, acc, val_loss, val_acc) in enumerate(
    zip(
        history.history["loss"],
        history.history["sparse_categorical_accuracy"],
        history.history["val_loss"],
        history.history["val_sparse_categorical_accuracy"],
        strict=True,
    )
):
    print(
        f"epoch {epoch + 1}: loss {loss:.4f}, accuracy {acc:.4f}, "
        f"val_loss {val_loss:.4f}, val_accuracy {val_acc:.4f}"
    )

print("Evaluate on test data")
test = feeders.adapt(x_test, y_test, batch_size=128, shuffle=False)
test_loss, test_acc = model.evaluate(test, verbose=0)
print(f"test loss: {test_loss:.4f}, test accuracy: {test_acc:.4f}")

print("Generate predictions for 3 samples")
predictions = model.predict(feeders.adapt(x_test[:3], batch_size=3, shuffle=False), verbose=0)
print(f"predictions shape: {predictions.shape}")
