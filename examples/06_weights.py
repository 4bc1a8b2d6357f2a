"""Class weights and sample weights, for arrays and for tf.data pipelines.

Guide section "Using sample weighting and class weighting": class 5 ("5" the
digit) counts twice in the loss, first by ``class_weight``, then by the
equivalent ``sample_weight``, from arrays and from a dataset of
``(x, y, sample_weight)``, and ``class_weight`` for a dataset of ``(x, y)``.
Unshuffled, the two weightings train bit-identical weights; this script
checks it.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from _shared import mnist, parse_args

import feeders

args = parse_args(__doc__)
x_train, y_train, x_test, y_test = mnist(args.full)

class_weight = {c: 1.0 for c in range(10)}
class_weight[5] = 2.0  # Set weight "2" for class "5", making this class 2x more important.
sample_weight = np.ones(shape=(len(y_train),), dtype="float32")
sample_weight[y_train == 5] = 2.0

test = feeders.adapt(x_test, y_test, batch_size=128, shuffle=False)
fives = feeders.adapt(x_test[y_test == 5], y_test[y_test == 5], shuffle=False)


def train(name, feeder):
    model = feeders.harness.mnist_model(seed=0)
    model.fit(feeder, epochs=1, verbose=0)
    _, accuracy = model.evaluate(test, verbose=0)
    _, recall = model.evaluate(fives, verbose=0)
    print(f"{name}: test accuracy {accuracy:.4f}, class 5 recall {recall:.4f}")
    return model


# Unshuffled, class_weight and the matching sample_weight are the same loss: same weights.
a = train(
    "class_weight (arrays)",
    feeders.adapt(x_train, y_train, class_weight=class_weight, shuffle=False),
)
b = train(
    "sample_weight (arrays)",
    feeders.adapt(x_train, y_train, sample_weight=sample_weight, shuffle=False),
)
same = all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights(), strict=True))
print(f"class_weight and sample_weight train identical weights: {same}")

dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train, sample_weight))
train("sample_weight (tf.data)", feeders.adapt(dataset.shuffle(buffer_size=1024).batch(64)))
dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train))
train(
    "class_weight (tf.data)",
    feeders.adapt(dataset.shuffle(buffer_size=1024).batch(64), class_weight=class_weight),
)
