"""NumPy data with a validation holdout: ``feeder.split(0.2)``, Keras' ``validation_split``.

Guide section "Automatically setting apart a validation holdout set". As with
``validation_split=0.2``, ``split(0.2)`` holds out the *last* 20 % of the
samples before any shuffling; unlike it, the split also works for tf.data
pipelines, generators and Sequences (see 04). With ``shuffle=False`` the result
is bit-identical to Keras' own ``validation_split``; this script checks it.
"""

from __future__ import annotations

import numpy as np
from _shared import mnist, parse_args

import feeders

args = parse_args(__doc__)
x_train, y_train, x_test, y_test = mnist(args.full)

train, val = feeders.adapt(x_train, y_train, batch_size=64, shuffle=True, seed=0).split(0.2)
model = feeders.harness.mnist_model(seed=0)
history = model.fit(train, validation_data=val, epochs=1, verbose=0)
print(f"split(0.2): {train.source.num_samples:,} train / {val.source.num_samples:,} validation")
print(
    f"val loss: {history.history['val_loss'][-1]:.4f}, "
    f"val accuracy: {history.history['val_sparse_categorical_accuracy'][-1]:.4f}"
)

# The same split, unshuffled, against Keras' validation_split: identical weights.
ours, theirs = feeders.harness.mnist_model(seed=1), feeders.harness.mnist_model(seed=1)
train, val = feeders.adapt(x_train, y_train, batch_size=64, shuffle=False).split(0.2)
ours.fit(train, validation_data=val, epochs=1, verbose=0)
theirs.fit(
    x_train, y_train, batch_size=64, shuffle=False, validation_split=0.2, epochs=1, verbose=0
)
same = all(
    np.array_equal(a, b) for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True)
)
print(f"identical to keras validation_split: {same}")

test_loss, test_acc = model.evaluate(feeders.adapt(x_test, y_test, shuffle=False), verbose=0)
print(f"test loss: {test_loss:.4f}, test accuracy: {test_acc:.4f}")
