"""See where training waits for data: :class:`DataWaitMonitor`, a Keras callback.

NOTE [ what the data-wait fraction measures ]
Per epoch, ``wait`` is the seconds the feeder spent in ``next()`` on its source
for the batches of that epoch's training steps (:meth:`Feeder.pipeline_stats`),
and ``step time`` the wall time from the epoch's start to its last training
step (validation excluded). Where batches reach Keras through Python with
nothing ahead of them (the NumPy/JAX iterators) that is exactly the time
training waited. Behind ``as_dataset()``'s prefetch, production overlaps
training, so it is the producer's busy share, an upper bound on the wait: near
1 the producer never rests and training waits for it; well below 1 the prefetch
hides it. A feeder on its source's native ``tf.data`` pipeline (arrays,
``tf.data``) produces no batch in Python, so nothing can be timed: the fraction
is NaN (a float, so ``history`` and CSV loggers keep working), and the monitor
says so once.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any

import keras

from feeders.capabilities import HasPool
from feeders.feeder import Feeder
from feeders.images.files import ImageFileSequence
from feeders.sources.sequences import SequenceSource

__all__ = ["DataWaitMonitor", "advice"]

logger = logging.getLogger(__name__)


class DataWaitMonitor(keras.callbacks.Callback):  # type: ignore[misc]  # Keras is untyped
    """Log, per epoch, how much of training waited for data, and which knob would help.

    At each epoch end it adds ``data_wait_fraction`` (in [0, 1], NaN when it
    cannot be measured: NOTE [ what the data-wait fraction measures ]) and
    ``batches_per_second`` (training batches delivered per second of step time)
    to the epoch's ``logs``, so they land in ``history.history`` (callbacks run
    before Keras' own ``History``). It logs one INFO line per epoch on the
    ``feeders.monitor`` logger and, when the fraction exceeds
    ``input_bound_at``, a WARNING naming the knobs that would help. Each epoch's
    figures, with the source's worker-pool counters, are also kept in
    :attr:`epochs`.

    Its cost is three clock reads per epoch and a counter per step; the
    feeder times its Python path whether or not a monitor is attached.

    Args:
        feeder: the training feeder passed to ``fit``.
        input_bound_at: the fraction above which training counts as input-bound.

    Raises:
        TypeError: ``feeder`` is not a :class:`~feeders.Feeder`.
        ValueError: ``input_bound_at`` is not in (0, 1].
    """

    def __init__(self, feeder: Feeder, *, input_bound_at: float = 0.5) -> None:
        super().__init__()
        if not isinstance(feeder, Feeder):
            raise TypeError(
                "`feeder` must be the feeders.Feeder passed to fit, but got "
                f"feeder={type(feeder).__name__}. Wrap the data first: "
                "feeder = feeders.adapt(x, y, ...); model.fit(feeder, callbacks=[DataWaitMonitor(feeder)])."
            )
        if isinstance(input_bound_at, bool) or not 0 < input_bound_at <= 1:
            raise ValueError(
                f"`input_bound_at` must be a fraction in (0, 1], but got input_bound_at={input_bound_at!r}. "
                "Pass e.g. input_bound_at=0.5."
            )
        self.feeder = feeder
        self.input_bound_at = float(input_bound_at)
        self.epochs: list[dict[str, Any]] = []
        self._begin: tuple[float, dict[str, Any]] | None = None
        self._end: tuple[float, dict[str, Any]] | None = None
        self._steps = 0
        self._said_native = False

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._begin = (time.perf_counter(), self.feeder.pipeline_stats())
        self._end, self._steps = None, 0

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._steps += 1

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        # Validation inside fit: the epoch's training steps are over.
        if self._begin is not None and self._end is None:
            self._end = (time.perf_counter(), self.feeder.pipeline_stats())

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._begin is None:
            return
        if self._end is None:
            self._end = (time.perf_counter(), self.feeder.pipeline_stats())
        record = self._measure(epoch, self._begin, self._end)
        self._begin = None
        self.epochs.append(record)
        if logs is not None:
            logs["data_wait_fraction"] = record["data_wait_fraction"]
            logs["batches_per_second"] = record["batches_per_second"]
        self._report(record)

    def _measure(
        self, epoch: int, begin: tuple[float, dict[str, Any]], end: tuple[float, dict[str, Any]]
    ) -> dict[str, Any]:
        step_s = max(end[0] - begin[0], 1e-9)
        produced = end[1]["batches"] - begin[1]["batches"]
        wait_s = end[1]["wait_s"] - begin[1]["wait_s"]
        per_call = int(getattr(self.model, "steps_per_execution", 1) or 1)
        trained = self._steps * per_call
        steps = (self.params or {}).get("steps")
        if steps:
            trained = min(trained, int(steps))
        fraction = min(max(wait_s / step_s, 0.0), 1.0) if produced else math.nan
        record: dict[str, Any] = {
            "epoch": epoch,
            "data_wait_fraction": fraction,
            "batches_per_second": trained / step_s,
            "wait_s": wait_s if produced else math.nan,
            "step_s": step_s,
            "batches": trained,
            "path": end[1]["path"],
            "pool": end[1]["pool"] if produced else None,
        }
        record["advice"] = advice(self.feeder, record) if fraction > self.input_bound_at else []
        return record

    def _report(self, record: dict[str, Any]) -> None:
        fraction = record["data_wait_fraction"]
        if math.isnan(fraction):
            logger.info(
                "epoch %d: %.1f batches/s; data wait not measured (path: %s)",
                record["epoch"] + 1,
                record["batches_per_second"],
                record["path"],
            )
            if not self._said_native:
                self._said_native = True
                why = (
                    f"the feeder hands Keras its {self.feeder.kind!r} source's own tf.data "
                    "pipeline, so no batch is produced in Python"
                    if record["path"] == "native"
                    else "no batch of this feeder went through Python during the epoch (is it "
                    "the feeder passed to fit?)"
                )
                logger.info(
                    "DataWaitMonitor: %s, and the wait cannot be timed: data_wait_fraction is "
                    "NaN. For a tf.data pipeline, use the TensorFlow profiler's input-pipeline "
                    "analysis. (Logged once.)",
                    why,
                )
            return
        pool = record["pool"]
        logger.info(
            "epoch %d: input-bound fraction %.2f (%.2f s producing batches in %.2f s of "
            "training steps), %.1f batches/s%s",
            record["epoch"] + 1,
            fraction,
            record["wait_s"],
            record["step_s"],
            record["batches_per_second"],
            "" if pool is None else f"; pool: {_describe_pool(pool)}",
        )
        if record["advice"]:
            logger.warning(
                "epoch %d: training is input-bound (%.0f%% of step time producing batches, "
                "above %.0f%%). What would help: %s",
                record["epoch"] + 1,
                100 * fraction,
                100 * self.input_bound_at,
                " ".join(f"({n}) {tip}" for n, tip in enumerate(record["advice"], 1)),
            )


def advice(feeder: Feeder, record: dict[str, Any]) -> list[str]:
    """The knobs that would help an input-bound ``feeder``, from its source and pool counters.

    Args:
        feeder: the training feeder.
        record: one of :attr:`DataWaitMonitor.epochs` (its ``pool`` counters are used).

    Returns:
        One sentence per knob, most promising first; never empty.
    """
    source = feeder.source
    pool = source.pool if isinstance(source, HasPool) else None
    cores = os.cpu_count() or 1
    tips: list[str] = []
    sequence = source.sequence if isinstance(source, SequenceSource) else None
    if isinstance(sequence, ImageFileSequence) and sequence.decoder == "skimage":
        tips.append(
            "ImageFileSequence(decoder='auto'): PIL's draft mode decodes JPEGs at reduced "
            "size, several times faster than decoder='skimage'."
        )
    if pool is None:
        tips.append(
            f"the {feeder.kind!r} source builds every batch in the training thread: move the "
            "work into a keras.utils.PyDataset passed with workers=N, or into tf.data ops "
            "(map with num_parallel_calls, prefetch)."
        )
        return tips
    stats = record.get("pool") or {}
    occupancy = float(stats.get("mean_queue_occupancy", 0.0))
    if pool.workers == 0:
        tips.append(
            f"workers=0 builds every batch in the training thread: pass workers={cores} "
            f"(this machine has {cores} cores)."
        )
    elif pool.workers < cores:
        tips.append(f"more workers: workers={pool.workers} on {cores} cores; try workers={cores}.")
    if pool.workers and not pool.use_multiprocessing:
        tips.append(
            "use_multiprocessing=True: threads share the GIL, so a __getitem__ that is mostly "
            "Python (loops, PIL/skimage calls that hold the GIL) does not run in parallel."
        )
    if pool.workers and occupancy < 0.5 and pool.max_queue_size <= pool.workers:
        tips.append(
            f"max_queue_size > workers: the queue was empty at almost every request "
            f"(mean occupancy {occupancy:.2f}) and max_queue_size={pool.max_queue_size} "
            f"leaves the {pool.workers} workers no room to build ahead; try "
            f"max_queue_size={2 * pool.workers}."
        )
    if not tips:
        tips.append(
            f"the {pool.workers} workers on {cores} cores already run flat out: make "
            "__getitem__ cheaper (decode at a smaller size, cache decoded data) or move it "
            "into tf.data ops."
        )
    return tips


def _describe_pool(stats: dict[str, Any]) -> str:
    return (
        f"{stats['batches']} batches {stats['batches_per_worker']} per worker, mean queue "
        f"occupancy {stats['mean_queue_occupancy']:.2f}, consumer blocked "
        f"{stats['consumer_wait_s']:.2f} s"
    )
