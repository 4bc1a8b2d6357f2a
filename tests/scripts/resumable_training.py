"""Train with FeederCheckpoint and log the sample ids of every batch *trained* (not fetched).

Run by tests/test_resume.py, which SIGKILLs it mid-epoch and runs it again.
Usage: python resumable_training.py CHECKPOINT_DIR LOG_FILE [SEED]
"""

from __future__ import annotations

import os
import sys

import keras
import numpy as np

import feeders
from feeders.callbacks import fit_resumable

NUM_SAMPLES, BATCH_SIZE, EPOCHS, SAVE_FREQ = 640, 32, 3, 5


@keras.saving.register_keras_serializable(package="feeders_tests")
class DropIds(keras.layers.Layer):
    """Column 0 carries the sample id for the log; the model learns from the rest."""

    def call(self, inputs):
        return inputs[:, 1:]


@keras.saving.register_keras_serializable(package="feeders_tests")
class LoggingModel(keras.Model):
    """Appends the ids (column 0 of x) of each trained batch to a log, one line per batch."""

    log_path = ""

    def train_step(self, data):
        x = data[0]
        ids = " ".join(str(int(i)) for i in x[:, 0].numpy())
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"{ids}\n".encode())
        os.close(fd)
        return super().train_step(data)


def build_model() -> keras.Model:
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(2, activation="softmax")(DropIds()(inputs))
    model = LoggingModel(inputs, outputs)
    model.compile("sgd", "sparse_categorical_crossentropy", run_eagerly=True)
    return model


def main() -> None:
    directory, log, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0
    LoggingModel.log_path = log
    ids = np.arange(NUM_SAMPLES, dtype="float32")
    x = np.stack([ids, np.sin(ids), np.cos(ids)], axis=1)
    y = (np.arange(NUM_SAMPLES) % 2).astype("int64")
    feeder = feeders.adapt(x, y, batch_size=BATCH_SIZE, seed=seed)
    fit_resumable(build_model, feeder, directory, epochs=EPOCHS, save_freq=SAVE_FREQ, verbose=0)


if __name__ == "__main__":
    main()
