"""Keras' own callbacks with every source kind: the files they write, the epoch they stop at.

One training run per source kind (module-scoped), with all the callbacks at once:
the learning rate is 1e-3 for two epochs and 0 after, so ``val_loss`` improves
at epochs 1 and 2 and is then exactly flat. ``EarlyStopping(min_delta=1e-2,
patience=2)`` must stop after epoch 4; the best-only checkpoint must exist for
epochs 1 and 2 only; a checkpoint every 100 batches (60 per epoch) must exist
for batches 100 and 200.
"""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pytest

import feeders
from feeders.harness.validate import RECIPES

TRAIN, VALIDATION, BATCH_SIZE = 960, 320, 16  # 60 and 20 batches
FLAT_FROM = 2  # the epoch (0-based) from which the learning rate is 0
TENSORBOARD = importlib.util.find_spec("tensorboard") is not None


@dataclass
class Run:
    directory: Path
    history: dict[str, list[float]]
    early_stopping: keras.callbacks.EarlyStopping
    model: keras.Model


@pytest.fixture(scope="module", params=list(RECIPES))
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    make = RECIPES[request.param]
    directory = tmp_path_factory.mktemp(request.param.replace(".", "_"))
    x, y, _, _ = feeders.harness.mnist.mnist_arrays()
    train = make(x[:TRAIN], y[:TRAIN], BATCH_SIZE)
    val = make(x[TRAIN : TRAIN + VALIDATION], y[TRAIN : TRAIN + VALIDATION], BATCH_SIZE)
    early_stopping = keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=1e-2, patience=2)
    callbacks = [
        keras.callbacks.LearningRateScheduler(lambda epoch, lr: 1e-3 if epoch < FLAT_FROM else 0.0),
        early_stopping,
        keras.callbacks.ModelCheckpoint(
            str(directory / "best-{epoch:02d}.keras"), save_best_only=True, monitor="val_loss"
        ),
        keras.callbacks.ModelCheckpoint(
            str(directory / "step-{epoch:02d}-{batch:03d}.weights.h5"),
            save_weights_only=True,
            save_freq=100,
        ),
        keras.callbacks.CSVLogger(str(directory / "log.csv")),
    ]
    if TENSORBOARD:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(directory / "tb")))
    model = feeders.harness.mnist_model(seed=0)
    with train, val:
        history = model.fit(train, validation_data=val, epochs=10, callbacks=callbacks, verbose=0)
    return Run(directory, history.history, early_stopping, model)


def test_early_stopping_stops_at_the_expected_epoch(run: Run) -> None:
    val_loss = run.history["val_loss"]
    assert val_loss[1] < val_loss[0] - 1e-2, "the setup needs a real improvement at epoch 2"
    assert val_loss[FLAT_FROM] == val_loss[FLAT_FROM + 1] == val_loss[1], "and then a plateau"
    assert len(val_loss) == FLAT_FROM + 2
    assert run.early_stopping.stopped_epoch == FLAT_FROM + 1


def test_csv_logger_writes_a_row_per_epoch_with_the_right_columns(run: Run) -> None:
    with open(run.directory / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "epoch",
        "learning_rate",
        "loss",
        "sparse_categorical_accuracy",
        "val_loss",
        "val_sparse_categorical_accuracy",
    ]
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2, 3]
    np.testing.assert_allclose([float(row["learning_rate"]) for row in rows], [1e-3, 1e-3, 0, 0])
    for column in ("loss", "val_loss", "val_sparse_categorical_accuracy"):
        np.testing.assert_allclose([float(row[column]) for row in rows], run.history[column])


def test_best_only_checkpoints_are_written_when_val_loss_improves(run: Run) -> None:
    assert sorted(p.name for p in run.directory.glob("best-*")) == [
        "best-01.keras",
        "best-02.keras",
    ]
    best = keras.models.load_model(run.directory / "best-02.keras")
    # Nothing trains after epoch 2 (learning rate 0): the best model is the final one.
    for saved, final in zip(best.get_weights(), run.model.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, final)


def test_a_checkpoint_every_100_batches_counts_across_epochs(run: Run) -> None:
    # Batch 100 is batch 40 of epoch 2; batch 200 is batch 20 of epoch 4.
    assert sorted(p.name for p in run.directory.glob("step-*")) == [
        "step-02-040.weights.h5",
        "step-04-020.weights.h5",
    ]


@pytest.mark.skipif(
    not TENSORBOARD, reason="the TensorBoard callback needs `pip install tensorboard`"
)
def test_tensorboard_writes_an_epoch_loss_per_epoch(run: Run) -> None:
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    for phase in ("train", "validation"):
        files = list((run.directory / "tb" / phase).glob("events.out.tfevents.*"))
        assert len(files) == 1, phase
        losses = {
            event.step: float(tf.make_ndarray(value.tensor))
            for record in tf.data.TFRecordDataset([str(files[0])])
            for event in [event_pb2.Event.FromString(record.numpy())]
            for value in event.summary.value
            if value.tag == "epoch_loss"
        }
        history = run.history["loss" if phase == "train" else "val_loss"]
        assert sorted(losses) == [0, 1, 2, 3], phase
        np.testing.assert_allclose([losses[k] for k in sorted(losses)], history, rtol=1e-6)
