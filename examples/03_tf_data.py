"""tf.data pipelines through feeders, and ``steps_per_epoch`` that never runs out.

Guide section "Training & evaluation using tf.data Datasets". The guide's
pipeline (``shuffle(1024).batch(64)``) goes through ``feeders.adapt`` as is. With
Keras' own ``steps_per_epoch`` a finite dataset "will eventually run out of
data"; a feeder's ``steps_per_epoch`` makes every epoch exactly that many
batches, continuing where the last epoch stopped and starting the next pass
(a new seeded order) when the data ends.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from _shared import mnist, parse_args

import feeders

args = parse_args(
    __doc__,
    steps_per_epoch=dict(type=int, default=None, help="default: 100 (--full) or 40 (quick)"),
)
x_train, y_train, x_test, y_test = mnist(args.full)
steps = args.steps_per_epoch or (100 if args.full else 40)

# The guide's pipeline: shuffle and slice the dataset, then a test dataset.
train_dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train))
train_dataset = train_dataset.shuffle(buffer_size=1024).batch(64)
test_dataset = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(64)

model = feeders.harness.mnist_model(seed=0)
history = model.fit(feeders.adapt(train_dataset), epochs=3, verbose=0)
print(f"full epochs: loss {' -> '.join(f'{v:.4f}' for v in history.history['loss'])}")
loss, accuracy = model.evaluate(feeders.adapt(test_dataset), verbose=0)
print(f"test loss: {loss:.4f}, test accuracy: {accuracy:.4f}")


class BatchCounter(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_epoch_end(self, epoch, logs=None):
        print(f"epoch {epoch + 1}: {self.batches} batches, loss {logs['loss']:.4f}")


# Only `steps` batches per epoch. Here feeders shuffles (seeded, reproducible):
# give it the unbatched samples with batch_size and shuffle_buffer.
samples = tf.data.Dataset.from_tensor_slices((x_train, y_train))
feeder = feeders.adapt(samples, batch_size=64, shuffle_buffer=1024, seed=0, steps_per_epoch=steps)
print(f"steps_per_epoch={steps} of the {feeder.source.num_batches} batches in a pass")
model = feeders.harness.mnist_model(seed=0)
model.fit(feeder, epochs=3, verbose=0, callbacks=[BatchCounter()])
passes, batch = divmod(3 * steps, feeder.source.num_batches)
print(f"trained {3 * steps} batches; the next epoch starts at batch {batch} of pass {passes}")
