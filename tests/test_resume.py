"""Resumable training: SIGKILL mid-epoch, restart, nothing lost, nothing seen twice
beyond the batches after the last checkpoint (NOTE [ the resume guarantee ])."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import feeders
from feeders.callbacks import STATE_FILE, FeederCheckpoint, fit_resumable, load_state

SCRIPT = Path(__file__).parent / "scripts" / "resumable_training.py"
NUM_SAMPLES, BATCH_SIZE, EPOCHS, SAVE_FREQ = 640, 32, 3, 5
BATCHES = NUM_SAMPLES // BATCH_SIZE


def _run(directory: Path, log: Path, *, kill_after: int | None = None) -> int:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(directory), str(log)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline:
            if (
                kill_after is not None
                and log.exists()
                and len(log.read_text().splitlines()) >= kill_after
            ):
                proc.send_signal(signal.SIGKILL)
                proc.wait(30)
                return -signal.SIGKILL
            time.sleep(0.02)
        _, err = proc.communicate(timeout=5)
        assert proc.returncode == 0, err.decode()[-3000:]
        return proc.returncode
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _batches(log: Path) -> list[list[int]]:
    return [[int(v) for v in line.split()] for line in log.read_text().splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_mid_epoch_then_restart_trains_every_sample_once(tmp_path: Path) -> None:
    directory, first_log, second_log = (
        tmp_path / "ckpt",
        tmp_path / "first.log",
        tmp_path / "second.log",
    )
    kill_at = BATCHES + 13  # epoch 1, batch 13: 3 batches past the checkpoint at batch 10
    assert _run(directory, first_log, kill_after=kill_at) == -signal.SIGKILL
    first = _batches(first_log)
    saved = json.loads((directory / STATE_FILE).read_text())
    assert 1 <= saved["epoch"] <= 1 and saved["batch"] % SAVE_FREQ == 0
    checkpointed = saved["epoch"] * BATCHES + saved["batch"]
    assert checkpointed <= len(first)

    _run(directory, second_log)
    second = _batches(second_log)
    # The batches trained after the last checkpoint are trained exactly once more, first thing:
    replayed = first[checkpointed:]
    assert second[: len(replayed)] == replayed
    # Nothing is skipped or trained twice beyond that: the kept history is exact epochs.
    history = first[:checkpointed] + second
    assert len(history) == EPOCHS * BATCHES
    reference = feeders.adapt(np.zeros((NUM_SAMPLES, 1)), batch_size=BATCH_SIZE, seed=0).source
    for epoch in range(EPOCHS):
        ids = np.concatenate(history[epoch * BATCHES : (epoch + 1) * BATCHES])
        np.testing.assert_array_equal(np.sort(ids), np.arange(NUM_SAMPLES))
        np.testing.assert_array_equal(ids, reference.order(epoch))


def _feeder(n: int = 64, seed: int = 0, batch_size: int = 8) -> feeders.Feeder:
    return feeders.adapt(
        np.zeros((n, 2), "float32"), np.zeros(n, "int64"), batch_size=batch_size, seed=seed
    )


def _save_state(directory: Path, feeder: feeders.Feeder, trained: int) -> None:
    checkpoint = FeederCheckpoint(directory, feeder, save_freq=2)
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    checkpoint.set_model(model)
    next(iter(feeder))
    checkpoint.on_epoch_begin(0)
    checkpoint.on_train_batch_end(trained - 1)


def test_state_round_trips_and_seeks(tmp_path: Path) -> None:
    feeder = _feeder()
    _save_state(tmp_path, feeder, trained=4)
    assert load_state(tmp_path, _feeder()) == (0, 4)
    assert (tmp_path / "model.keras").exists()


@pytest.mark.parametrize(
    ("other", "field"),
    [(dict(n=72), "num_samples"), (dict(seed=1), "seed"), (dict(batch_size=16), "batch_size")],
)
def test_state_for_other_data_is_refused(tmp_path: Path, other: dict, field: str) -> None:
    _save_state(tmp_path, _feeder(), trained=2)
    with pytest.raises(ValueError, match=rf"written for other data \(.*{field}: saved"):
        load_state(tmp_path, _feeder(**other))


def test_corrupt_state_is_refused(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text('{"epoch": 1, "bat')
    with pytest.raises(ValueError, match=r"feeder state file .* is corrupt \(JSONDecodeError"):
        load_state(tmp_path, _feeder())


def test_bad_save_freq() -> None:
    with pytest.raises(
        ValueError,
        match=r"`save_freq` must be 'epoch' or a positive number of batches, but got save_freq=0",
    ):
        FeederCheckpoint("x", _feeder(), save_freq=0)


BAD_POSITIONS = {
    "epoch true": ({"epoch": True}, r"has `epoch`=True \(bool\); it must be an integer"),
    "batch -3": ({"batch": -3}, r"has `batch`=-3; it must be >= 0 and below num_batches=8"),
    "batch 999": ({"batch": 999}, r"has `batch`=999; it must be >= 0 and below num_batches=8"),
    "epoch -1": ({"epoch": -1}, r"has `epoch`=-1; it must be >= 0"),
    "Infinity": ({"batch": float("inf")}, r"has `batch`=inf \(float\); it must be an integer"),
    "epoch 1.0": ({"epoch": 1.0}, r"has `epoch`=1.0 \(float\); it must be an integer"),
    "no batch": ({"batch": None}, r"has `batch`=None \(NoneType\); it must be an integer"),
}


@pytest.mark.parametrize("edit", BAD_POSITIONS, ids=str)
def test_an_edited_position_is_refused_naming_the_field(tmp_path: Path, edit: str) -> None:
    import keras

    _save_state(tmp_path, _feeder(), trained=2)
    state = json.loads((tmp_path / STATE_FILE).read_text())
    changes, message = BAD_POSITIONS[edit]
    (tmp_path / STATE_FILE).write_text(json.dumps({**state, **changes}))  # inf → Infinity
    with pytest.raises(ValueError, match=message):
        load_state(tmp_path, _feeder())

    def build() -> keras.Model:
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        return model

    with pytest.raises(ValueError, match=message):
        fit_resumable(build, _feeder(), tmp_path, epochs=2, verbose=0)
