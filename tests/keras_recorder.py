"""A Keras model that records the sample ids of every batch it trains on (tests only).

Rows are id-tagged (``x[:, 0]`` is the sample id, as in the conformance data),
and the model runs eagerly, so the first layer sees each training batch as
Keras hands it over, on whichever path (tf.data, NumPy) the backend takes.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Recorder:
    """``model`` trains on ``(x, y)`` with ``x`` of shape (n, features) and integer ``y``.

    ``seen`` lists the ids of each training batch; ``echo`` returns its input,
    so ``echo.predict(feeder)`` shows the rows in the order predict read them.
    """

    def __init__(
        self, features: int = 3, classes: int = 5, *, named: bool = False, seed: int = 0
    ) -> None:
        import keras

        self.seen: list[list[int]] = []
        recorder = self

        class Record(keras.layers.Layer):
            def call(self, x: Any, training: Any = None) -> Any:
                if training:
                    recorder.seen.append(np.asarray(x)[:, 0].astype(np.int64).tolist())
                return x

        inputs = keras.Input((features,), name="features")
        recorded = Record()(inputs)
        init = keras.initializers.GlorotUniform(seed=seed)
        outputs = keras.layers.Dense(classes, name="label", kernel_initializer=init)(recorded)
        model_inputs = {"features": inputs} if named else inputs
        self.model = keras.Model(model_inputs, {"label": outputs} if named else outputs)
        self.model.compile(
            "sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=True
        )
        self.echo = keras.Model(model_inputs, recorded)
