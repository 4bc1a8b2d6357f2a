"""The guide's reference models, built and compiled exactly as the guide does.

Why fixed names and layers: ``feeders validate`` and the tests compare feeders
by training these models from the same initial weights, so they must not drift.
"""

from __future__ import annotations

import keras


def mnist_model(seed: int | None = None) -> keras.Model:
    """784 → Dense 64 relu → Dense 64 relu → Dense 10 softmax; RMSprop, sparse CE.

    Args:
        seed: seeds the initial weights (``keras.utils.set_random_seed``) when given,
            so two calls build identical models.
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(784,), name="digits")
    x = keras.layers.Dense(64, activation="relu", name="dense_1")(inputs)
    x = keras.layers.Dense(64, activation="relu", name="dense_2")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(
        optimizer=keras.optimizers.RMSprop(),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
    return model
