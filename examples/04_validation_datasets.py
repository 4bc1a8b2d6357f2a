"""Validation datasets: ``validation_data=`` a feeder, ``validation_steps``, and split for tf.data.

Guide section "Using a validation dataset". Keras' ``validation_steps=10``
evaluates the first 10 batches of the validation feeder at the end of every
epoch (each evaluation starts the feeder's next pass, unshuffled, so always
the same samples). The guide notes that ``validation_split`` is for NumPy data
only; a feeder's ``split`` also holds out the end of a finite tf.data pipeline.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from _shared import mnist, parse_args

import feeders

args = parse_args(__doc__)
x_train, y_train, _, _ = mnist(args.full)
held_out = len(x_train) // 6
x_val, y_val = x_train[-held_out:], y_train[-held_out:]
x_train, y_train = x_train[:-held_out], y_train[:-held_out]

train_dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(1024).batch(64)
val_dataset = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(64)


class ValidationBatches(keras.callbacks.Callback):
    """Counts the batches of each evaluation that fit runs."""

    def on_test_begin(self, logs=None):
        self.batches = 0

    def on_test_batch_end(self, batch, logs=None):
        self.batches += 1


model = feeders.harness.mnist_model(seed=0)
history = model.fit(
    feeders.adapt(train_dataset), epochs=1, validation_data=feeders.adapt(val_dataset), verbose=0
)
print(f"validation_data: val loss {history.history['val_loss'][-1]:.4f}")

counter = ValidationBatches()
val = feeders.adapt(val_dataset)
history = model.fit(
    feeders.adapt(train_dataset),
    epochs=2,
    validation_data=val,
    validation_steps=10,
    callbacks=[counter],
    verbose=0,
)
print(f"validation_steps=10: {counter.batches} validation batches per epoch (of {val.num_batches})")
print("val loss per epoch: " + ", ".join(f"{v:.4f}" for v in history.history["val_loss"]))

# validation_split for a dataset: split a finite, unshuffled pipeline; feeders shuffles it.
samples = tf.data.Dataset.from_tensor_slices((x_train, y_train))
train, val = feeders.adapt(samples, batch_size=64, shuffle_buffer=1024, seed=0).split(0.2)
print(f"split(0.2) of a tf.data pipeline: {train.num_batches} / {val.num_batches} batches")
model = feeders.harness.mnist_model(seed=0)
history = model.fit(train, validation_data=val, epochs=1, verbose=0)
print(f"val accuracy: {history.history['val_sparse_categorical_accuracy'][-1]:.4f}")
