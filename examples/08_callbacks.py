"""Callbacks with feeders: EarlyStopping, ModelCheckpoint, a learning-rate schedule, TensorBoard, CSVLogger, your own.

Guide section "Using callbacks" (and "Checkpointing models", "Using learning
rate schedules", "Visualizing loss and metrics during training with
TensorBoard"). Training stops when ``val_loss`` stops improving by at least
1e-2 for 2 epochs; the best model so far is saved each time it improves.
"""

from __future__ import annotations

import csv
import importlib.util
import tempfile
from pathlib import Path

import keras
from _shared import mnist, parse_args

import feeders


class LossHistory(keras.callbacks.Callback):
    """The guide's own callback: the loss of every batch."""

    def on_train_begin(self, logs=None):
        self.per_batch_losses = []

    def on_batch_end(self, batch, logs=None):
        self.per_batch_losses.append(logs.get("loss"))


args = parse_args(__doc__, out=dict(default=None, help="folder for checkpoints and logs"))
x_train, y_train, _, _ = mnist(args.full)

with tempfile.TemporaryDirectory() as scratch:
    out = Path(args.out or scratch)
    out.mkdir(parents=True, exist_ok=True)
    history = LossHistory()
    callbacks = [
        keras.callbacks.EarlyStopping(
            # Stop training when `val_loss` is no longer improving
            monitor="val_loss",
            # "no longer improving" being defined as "no better than 1e-2 less"
            min_delta=1e-2,
            # "no longer improving" being further defined as "for at least 2 epochs"
            patience=2,
            verbose=1,
        ),
        keras.callbacks.ModelCheckpoint(
            # Path where to save the model; {epoch} is filled in with the epoch number.
            filepath=str(out / "mymodel_{epoch}.keras"),
            # Only save a model if `val_loss` has improved.
            save_best_only=True,
            monitor="val_loss",
        ),
        keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.7 if epoch >= 2 else lr),
        keras.callbacks.CSVLogger(str(out / "training.csv")),
        history,
    ]
    # TensorFlow no longer installs TensorBoard; its callback needs the package.
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out / "logs")))
    else:
        print("TensorBoard skipped: its callback needs `pip install tensorboard`")
    # The guide's validation_split=0.2, as a feeder split.
    train, val = feeders.adapt(x_train, y_train, batch_size=64, seed=0).split(0.2)
    model = feeders.harness.mnist_model(seed=0)
    fit = model.fit(train, epochs=20, validation_data=val, callbacks=callbacks, verbose=0)

    epochs = len(fit.history["loss"])
    print(f"early stopping: trained {epochs} of 20 epochs")
    print(f"best val_loss: {min(fit.history['val_loss']):.4f}")
    print(f"checkpoints: {sorted(p.name for p in out.glob('mymodel_*.keras'))}")
    with open(out / "training.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    print(f"csv rows: {len(rows)}, columns: {list(rows[0])}")
    if tensorboard:
        events = sorted(p.parent.name for p in (out / "logs").rglob("events.out.tfevents.*"))
        print(f"tensorboard event files: {len(events)} ({', '.join(events)})")
    print(f"per-batch losses recorded: {len(history.per_batch_losses)}")
