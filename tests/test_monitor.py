"""DataWaitMonitor and the counters behind it (Feeder.pipeline_stats, WorkerPool.stats)."""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

import feeders
from feeders.callbacks import DataWaitMonitor
from feeders.images import ImageFileSequence
from feeders.images.samples import write_photos
from feeders.monitor import advice
from tests.sequence_helpers import CountingSequence


class Batches:
    """12 batches of 16 samples; ``delay`` seconds of sleep per batch."""

    def __init__(self, delay: float = 0.0, n: int = 12) -> None:
        self.delay, self.n = delay, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        time.sleep(self.delay)
        x = np.full((16, 4), i, dtype="float32")
        return x, np.arange(16) % 2


def tiny_model(features: int) -> keras.Model:
    model = keras.Sequential(
        [keras.Input((features,)), keras.layers.Dense(2, activation="softmax")]
    )
    model.compile("sgd", "sparse_categorical_crossentropy")
    return model


def fit(feeder: feeders.Feeder, epochs: int = 2, **kwargs: Any) -> tuple[Any, DataWaitMonitor]:
    monitor = DataWaitMonitor(feeder)
    features = feeder.spec.x.shape[-1]
    history = tiny_model(features).fit(
        feeder, epochs=epochs, verbose=0, callbacks=[monitor], **kwargs
    )
    return history, monitor


def test_a_sleeping_sequence_is_flagged_input_bound(caplog: pytest.LogCaptureFixture) -> None:
    # 0.15 s per batch against a step of a few ms: input-bound by far, even when a loaded
    # 2-core machine makes each step 10x slower (0.05 s read 0.48 once at load average 10).
    feeder = feeders.adapt(Batches(delay=0.15), shuffle=False)
    with caplog.at_level(logging.INFO, logger="feeders.monitor"):
        history, monitor = fit(feeder)
    fractions = history.history["data_wait_fraction"]
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert fractions[-1] > 0.5  # the first epoch also traces the model
    assert all(b > 0 for b in history.history["batches_per_second"])
    last = monitor.epochs[-1]
    assert last["batches"] == 12 and last["wait_s"] >= 12 * 0.15 * 0.9
    assert any("workers=0 builds every batch" in tip for tip in last["advice"])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("training is input-bound" in w and "workers=" in w for w in warnings)


def test_a_fast_sequence_is_not_input_bound(caplog: pytest.LogCaptureFixture) -> None:
    feeder = feeders.adapt(Batches(), shuffle=False)
    with caplog.at_level(logging.INFO, logger="feeders.monitor"):
        history, monitor = fit(feeder)
    assert all(0.0 <= f < 0.5 for f in history.history["data_wait_fraction"])
    assert [e["advice"] for e in monitor.epochs] == [[], []]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "input-bound fraction" in caplog.records[-1].getMessage()


def test_validation_time_is_not_counted_as_waiting() -> None:
    train = feeders.adapt(Batches(), shuffle=False)
    slow_validation = feeders.adapt(Batches(delay=0.1, n=6), shuffle=False)
    history, monitor = fit(train, validation_data=slow_validation)
    assert all(f < 0.5 for f in history.history["data_wait_fraction"])
    assert all(e["step_s"] < 6 * 0.1 for e in monitor.epochs[1:])  # 0.6 s validating


def test_the_native_tf_path_cannot_be_timed(caplog: pytest.LogCaptureFixture) -> None:
    x, y = np.zeros((64, 4), "float32"), np.arange(64) % 2
    feeder = feeders.adapt(x, y, batch_size=16)
    with caplog.at_level(logging.INFO, logger="feeders.monitor"):
        history, _ = fit(feeder)
    assert all(math.isnan(f) for f in history.history["data_wait_fraction"])
    assert all(b > 0 for b in history.history["batches_per_second"])
    said = [r.getMessage() for r in caplog.records if "cannot be timed" in r.getMessage()]
    assert len(said) == 1 and "'arrays' source's own tf.data pipeline" in said[0]


@pytest.mark.parametrize(
    "options",
    [{"workers": 0}, {"workers": 2}, {"workers": 2, "use_multiprocessing": True}],
    ids=["in-caller", "threads", "processes"],
)
def test_pool_counters_add_up_to_the_batches(options: dict[str, Any]) -> None:
    sequence = CountingSequence(n=40, batch_size=8)
    with feeders.adapt(sequence, shuffle=True, seed=0, **options) as feeder:
        _, monitor = fit(feeder, epochs=3)
        stats = feeder.pipeline_stats()
    assert stats["path"] == "python" and stats["passes"] >= 3
    pools = [e["pool"] for e in monitor.epochs]
    assert [p["batches"] for p in pools] == [len(sequence)] * 3
    assert all(sum(p["batches_per_worker"]) == p["batches"] for p in pools)
    assert all(len(p["batches_per_worker"]) == max(options["workers"], 1) for p in pools)
    assert all(p["mean_queue_occupancy"] >= 0 and p["consumer_wait_s"] >= 0 for p in pools)
    assert [e["batches"] for e in monitor.epochs] == [len(sequence)] * 3


def test_pipeline_stats_count_every_batch_of_the_numpy_path() -> None:
    feeder = feeders.adapt(CountingSequence(n=40, batch_size=8), shuffle=False)
    assert feeder.pipeline_stats() == {
        "path": None,
        "batches": 0,
        "wait_s": 0.0,
        "passes": 0,
        "pool": None,
    }
    for _ in range(2):
        assert sum(1 for _ in feeder.get_numpy_iterator()) == 5
    stats = feeder.pipeline_stats()
    assert (stats["path"], stats["batches"], stats["passes"]) == ("python", 10, 2)
    assert stats["pool"]["epoch"] == 1 and stats["pool"]["batches"] == 5


def pool_feeder(**options: Any) -> feeders.Feeder:
    return feeders.adapt(Batches(), shuffle=False, **options)


CORES = os.cpu_count() or 1


@pytest.mark.parametrize(
    ("options", "pool", "expected"),
    [
        ({"workers": 0}, {}, f"pass workers={CORES}"),
        ({"workers": 1}, {}, "use_multiprocessing=True"),
        ({"workers": 1, "max_queue_size": 1}, {"mean_queue_occupancy": 0.0}, "max_queue_size=2"),
    ],
    ids=["in-caller", "threads", "short-queue"],
)
def test_advice_names_the_knob(
    options: dict[str, Any], pool: dict[str, Any], expected: str
) -> None:
    with pool_feeder(**options) as feeder:
        tips = advice(feeder, {"pool": pool})
    assert any(expected in tip for tip in tips), tips


def test_advice_names_a_faster_decoder_for_image_files(tmp_path: Path) -> None:
    files = [str(p) for p in write_photos(tmp_path, 2, sizes=(40, 60))]
    sequence = ImageFileSequence(files, [0, 1], batch_size=2, image_size=(8, 8), decoder="skimage")
    with feeders.adapt(sequence) as feeder:
        tips = advice(feeder, {"pool": {}})
    assert "ImageFileSequence(decoder='auto')" in tips[0]


def test_advice_for_a_source_without_pool() -> None:
    def batches() -> Any:
        yield np.zeros((2, 4), "float32"), np.zeros(2)

    [tip] = advice(feeders.adapt(batches), {"pool": None})
    assert "builds every batch in the training thread" in tip and "tf.data" in tip


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match=r"`feeder` must be the feeders.Feeder .* feeder=ndarray"):
        DataWaitMonitor(np.zeros(3))  # type: ignore[arg-type]
    feeder = feeders.adapt(Batches(), shuffle=False)
    with pytest.raises(ValueError, match=r"`input_bound_at` must be a fraction in \(0, 1\]"):
        DataWaitMonitor(feeder, input_bound_at=1.5)


def test_the_monitor_is_exported_from_callbacks() -> None:
    from feeders import monitor

    assert feeders.callbacks.DataWaitMonitor is monitor.DataWaitMonitor
