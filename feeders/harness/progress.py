"""Live progress for ``feeders demo`` and ``validate``: a rich bar per run, advanced by Keras.

Why a callback of our own rather than ``verbose=1``: Keras' Progbar redraws
one line per epoch and cannot share the terminal with the command's other
rows (one per source in ``validate``); a rich task per run can, and it says
which epoch is running and how long it has taken, so a minutes-long command
is visibly alive. With ``--verbose`` the commands use Keras' own output.
"""

from __future__ import annotations

from typing import Any

import keras

__all__ = ["EpochProgress", "progress_bar"]


def progress_bar(console: Any = None) -> Any:
    """A rich ``Progress``: description, bar, batches done, elapsed time, last metrics."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description:<26}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[metrics]}"),
        console=console,
    )


class EpochProgress(keras.callbacks.Callback):  # type: ignore[misc]  # Keras is untyped
    """Advance a rich task per training batch; show the epoch and its last metrics.

    Args:
        progress: a started rich ``Progress`` (:func:`progress_bar`).
        name: what the task is called (``"mnist / generator"``).
        log_epochs: also print one line per finished epoch above the bars.
    """

    def __init__(self, progress: Any, name: str, *, log_epochs: bool = False) -> None:
        super().__init__()
        self.progress = progress
        self.name = name
        self.log_epochs = log_epochs
        self.task = progress.add_task(name, total=None, metrics="starting")
        self._epochs = 1
        self._done = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        params = self.params or {}
        self._epochs = int(params.get("epochs") or 1)
        steps = params.get("steps")
        total = steps * self._epochs if steps else None
        self.progress.update(self.task, total=total, completed=0, metrics="")

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        description = f"{self.name}: epoch {epoch + 1}/{self._epochs}"
        self.progress.update(self.task, description=description)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._done += 1
        self.progress.advance(self.task)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        shown = ", ".join(
            f"{k.replace('sparse_categorical_', '')} {v:.4f}" for k, v in (logs or {}).items()
        )
        self.progress.update(self.task, metrics=shown)
        if self.log_epochs:
            self.progress.console.print(f"{self.name}: epoch {epoch + 1}/{self._epochs}: {shown}")

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.progress.update(self.task, total=self._done, description=f"{self.name}: done")
