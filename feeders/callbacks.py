"""Keras callbacks that need to know about the feeder: resumable training.

NOTE [ the resume guarantee ]
:class:`FeederCheckpoint` saves the model and the feeder's position together,
every ``save_freq`` trained batches (and at each epoch end). Restarted with
:func:`fit_resumable` after a crash, training continues at the first batch
that was not trained *before the last checkpoint*: every batch up to the
checkpoint is trained exactly once, the batches trained after it (lost with
the crash, since the model weights that saw them were not saved) are trained
exactly once more, and no batch is skipped. The order of every epoch is the
one ``(seed, epoch)`` gives, so the resumed epoch is the same epoch.
A state file that is corrupt, or written for other data (number of batches,
batch size, samples, seed or source kind differ), is an error, never a
silent restart from zero.

NOTE [ a crashed fit's iterators are collected before exit ]
A ``fit`` stopped by an exception (the crash :func:`fit_resumable` recovers
from) leaves Keras' iterator over ``as_dataset()``'s ``from_generator``
pipeline in a reference cycle with the traceback. Left to the collector's
run at interpreter shutdown, TensorFlow then finalizes it with no Python
state and prints "Error occurred when finalizing GeneratorDataset iterator:
FAILED_PRECONDITION". One ``gc.collect()`` at exit (registered when this
module loads) finalizes it while Python still runs.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import keras

from feeders.feeder import Feeder
from feeders.monitor import DataWaitMonitor as DataWaitMonitor  # re-export
from feeders.sources._checks import check_position

STATE_VERSION = 1
MODEL_FILE = "model.keras"
STATE_FILE = "feeder_state.json"

atexit.register(gc.collect)  # NOTE [ a crashed fit's iterators are collected before exit ]


class FeederCheckpoint(keras.callbacks.Callback):  # type: ignore[misc]  # Keras is untyped
    """Save the model and the feeder's position together, atomically.

    Args:
        directory: where ``model.keras`` and ``feeder_state.json`` go.
        feeder: the training feeder passed to ``fit``.
        save_freq: ``"epoch"``, or every this many trained batches (and at
            each epoch end).
    """

    def __init__(
        self, directory: str | os.PathLike[str], feeder: Feeder, save_freq: int | str = "epoch"
    ) -> None:
        super().__init__()
        if save_freq != "epoch" and (
            isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq <= 0
        ):
            raise ValueError(
                f"`save_freq` must be 'epoch' or a positive number of batches, but got save_freq={save_freq!r}."
            )
        self.directory = Path(directory)
        self.feeder = feeder
        self.save_freq = save_freq
        self._trained_in_pass = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._trained_in_pass = 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._trained_in_pass = batch + 1
        if self.save_freq != "epoch" and self._trained_in_pass % int(self.save_freq) == 0:
            self.save()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.save()

    def save(self) -> None:
        """Write the model, then the state that points at it; each by an atomic rename."""
        self.directory.mkdir(parents=True, exist_ok=True)
        epoch, batch = self.feeder.trained_position(self._trained_in_pass)
        _atomic(self.directory / MODEL_FILE, lambda tmp: self.model.save(tmp))
        state = {
            "version": STATE_VERSION,
            "epoch": epoch,
            "batch": batch,
            **self.feeder.fingerprint(),
        }
        _atomic(
            self.directory / STATE_FILE,
            lambda tmp: Path(tmp).write_text(json.dumps(state, indent=1)),
        )


def _atomic(target: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=target.stem + ".", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_state(directory: str | os.PathLike[str], feeder: Feeder) -> tuple[int, int] | None:
    """The saved ``(epoch, batch)`` for ``feeder``, or ``None`` when nothing was saved.

    Raises:
        ValueError: the state file is corrupt, was written for other data, or
            holds a position that is not one (e.g. ``"batch": -3``; see
            :func:`feeders.sources._checks.check_position`).
    """
    path = Path(directory) / STATE_FILE
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
        version = state["version"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"The feeder state file {path} is corrupt ({type(err).__name__}: {err}). "
            "Delete the checkpoint directory to start over, or restore it from a backup."
        ) from err
    if version != STATE_VERSION:
        raise ValueError(
            f"{path} has state version {version!r}; this feeders writes {STATE_VERSION}."
        )
    expected = feeder.fingerprint()
    saved_count, count = state.get("process_count", 1), expected.get("process_count", 1)
    if saved_count != count:
        raise ValueError(
            f"The checkpoint in {Path(directory)} was written by {saved_count} data-parallel "
            f"processes, but this feeder is sharded for {count}: a saved position is a step of "
            f"one process's part of the epoch. Resume with {saved_count} processes "
            f"(shard=(index, {saved_count})), or use a new checkpoint directory."
        )
    differs = {k: (state.get(k), v) for k, v in expected.items() if state.get(k) != v}
    if differs:
        shown = ", ".join(f"{k}: saved {a!r} vs now {b!r}" for k, (a, b) in differs.items())
        raise ValueError(
            f"The checkpoint in {Path(directory)} was written for other data ({shown}). "
            "Resume with the same data, batch size and seed, or use a new checkpoint directory."
        )
    return check_position(state, feeder.num_batches, str(path))


def fit_resumable(
    build_model: Any,
    feeder: Feeder,
    directory: str | os.PathLike[str],
    *,
    epochs: int,
    save_freq: int | str = "epoch",
    callbacks: list[keras.callbacks.Callback] | None = None,
    **fit_kwargs: Any,
) -> keras.Model:
    """Train ``epochs`` epochs, resuming from ``directory`` when a checkpoint is there.

    ``build_model()`` makes a fresh compiled model when there is none. The
    interrupted epoch is finished first (only its untrained batches), then
    training goes on from the next epoch. See NOTE [ the resume guarantee ].

    Returns:
        The trained model.
    """
    position = load_state(directory, feeder)
    if position is None:
        model, (epoch, batch) = build_model(), (0, 0)
    else:
        model, (epoch, batch) = keras.models.load_model(Path(directory) / MODEL_FILE), position
    checkpoint = FeederCheckpoint(directory, feeder, save_freq)
    all_callbacks = [*(callbacks or []), checkpoint]
    feeder.seek(epoch, batch)
    remaining = (feeder.num_batches or 0) - batch
    if batch and remaining > 0 and epoch < epochs:
        model.fit(
            feeder,
            epochs=epoch + 1,
            initial_epoch=epoch,
            steps_per_epoch=remaining,
            callbacks=all_callbacks,
            **fit_kwargs,
        )
        epoch += 1
    if epoch < epochs:
        model.fit(feeder, epochs=epochs, initial_epoch=epoch, callbacks=all_callbacks, **fit_kwargs)
    return model
