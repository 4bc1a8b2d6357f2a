"""Checkpoint and restore: a crashed run resumes at the first batch after its last checkpoint.

Guide section "Checkpointing models" (``make_or_restore_model`` with
``ModelCheckpoint(save_freq=100)``). The guide restores the model, but its
data starts again from the first batch of the epoch. Here
``feeders.callbacks.fit_resumable`` saves the model *and* the feeder's
position every 100 batches; restarted after a crash it restores both and
continues at the first batch after the last checkpoint. The crash below is
simulated by an exception 50 batches after a checkpoint: the resumed run
trains those 50 batches once more, then the rest, and no batch is skipped.
"""

from __future__ import annotations

import tempfile

import keras
from _shared import mnist, parse_args

import feeders
from feeders.callbacks import fit_resumable

SAVE_FREQ = 100
CRASH_AFTER = 150  # batches of the first run


class SimulatedCrash(Exception):
    pass


class CrashAfter(keras.callbacks.Callback):
    """Stands in for a killed process: raises after ``batches`` trained batches."""

    def __init__(self, batches):
        super().__init__()
        self.batches, self.trained = batches, 0

    def on_train_batch_end(self, batch, logs=None):
        self.trained += 1
        if self.trained == self.batches:
            raise SimulatedCrash(f"simulated crash after {self.trained} batches")


class CountBatches(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.trained = getattr(self, "trained", 0)

    def on_train_batch_end(self, batch, logs=None):
        self.trained += 1


def build_model():
    return feeders.harness.mnist_model(seed=0)


args = parse_args(__doc__, directory=dict(default=None, help="checkpoint folder (default: temp)"))
x_train, y_train, x_test, y_test = mnist(args.full)
epochs = 2
with tempfile.TemporaryDirectory() as scratch:
    directory = args.directory or scratch
    feeder = feeders.adapt(x_train, y_train, batch_size=32, seed=0)
    per_epoch = feeder.num_batches
    print(f"{per_epoch} batches per epoch, {epochs} epochs, checkpoints every {SAVE_FREQ} batches")
    try:
        fit_resumable(
            build_model,
            feeder,
            directory,
            epochs=epochs,
            save_freq=SAVE_FREQ,
            callbacks=[CrashAfter(CRASH_AFTER)],
            verbose=0,
        )
    except SimulatedCrash as crash:
        print(f"first run: {crash}")

    # A new process would build everything again: a fresh feeder over the same data and seed.
    feeder = feeders.adapt(x_train, y_train, batch_size=32, seed=0)
    counter = CountBatches()
    model = fit_resumable(
        build_model,
        feeder,
        directory,
        epochs=epochs,
        save_freq=SAVE_FREQ,
        callbacks=[counter],
        verbose=0,
    )
    last_checkpoint = CRASH_AFTER // SAVE_FREQ * SAVE_FREQ
    expected = epochs * per_epoch - last_checkpoint
    print(
        f"resumed run: trained {counter.trained} batches (expected {expected}: from batch "
        f"{last_checkpoint} on, so {CRASH_AFTER - last_checkpoint} batches trained a second time)"
    )
    test_loss, test_acc = model.evaluate(
        feeders.adapt(x_test, y_test, batch_size=128, shuffle=False), verbose=0
    )
    print(f"test loss: {test_loss:.4f}, test accuracy: {test_acc:.4f}")
