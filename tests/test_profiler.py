"""`feeders.bench.profile` and `feeders bench --feeder`: the user's pipeline, measured, advised."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

import feeders
from feeders.bench import profile, resolve
from feeders.profiler import MIN_GAIN
from tests.bench_helpers import GilSleepSequence, small_arrays

ROOT = Path(__file__).parents[1]


def test_a_sequence_that_holds_the_gil_is_told_to_use_processes() -> None:
    found = profile(GilSleepSequence(), budget_s=15, worker_counts=[2])
    labels = [t.label for t in found.trials]
    assert labels == ["workers=0", "workers=2 (threads)", "workers=2, use_multiprocessing=True"]
    assert found.recommended.config == {"workers": 2, "use_multiprocessing": True}
    assert found.gain >= MIN_GAIN
    assert (
        found.recommendation == f"workers=2, use_multiprocessing=True: {found.gain:.1f}x workers=0"
    )
    assert found.recommended.images and found.recommended.images_per_s > 0
    assert all(t.error is None and t.batches >= 3 and t.seconds > 0 for t in found.trials)
    text = str(found)
    assert "recommended: workers=2, use_multiprocessing=True" in text
    assert max(map(len, text.splitlines())) <= 120


def test_a_small_arrays_feeder_is_told_workers_0() -> None:
    x, y = small_arrays()
    found = profile(x, y, batch_size=32, budget_s=4)
    assert found.recommended is found.baseline and found.recommended.label == "workers=0"
    assert found.recommendation.startswith("workers=0 (no other setting applies")
    assert found.baseline.batches_per_s > 0 and not found.baseline.images
    refused = [t.error for t in found.trials[1:]]
    assert refused and all("not applicable" in e and "'arrays'" in e for e in refused)


def test_with_a_model_a_short_fit_reports_the_data_wait() -> None:
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    found = profile(GilSleepSequence(batches=8), model=model, budget_s=12, worker_counts=[2])
    assert set(found.data_wait) == {"workers=0", found.recommended.label}
    assert 0.0 <= found.data_wait["workers=0"] <= 1.0
    assert "data wait" in str(found)


def test_a_feeder_built_by_the_user_is_timed_as_built() -> None:
    x, y = small_arrays()
    feeder = feeders.adapt(x, y, batch_size=64)
    found = profile(feeder, budget_s=1)
    assert [t.label for t in found.trials] == ["the feeder as built"]
    assert list(feeder.epoch(0))  # not closed: it is the user's


def test_the_knobs_it_varies_are_refused_as_options() -> None:
    with pytest.raises(
        ValueError, match=r"`workers` is what profile\(\) varies, but got workers=2"
    ):
        profile(GilSleepSequence(), workers=2)
    with pytest.raises(
        ValueError, match=r"`budget_s` must be positive seconds, but got budget_s=0"
    ):
        profile(GilSleepSequence(), budget_s=0)


def test_feeder_specs_are_checked() -> None:
    with pytest.raises(ValueError, match=r"`--feeder` must be package.module:function, but got"):
        resolve("tests.bench_helpers", "--feeder")
    with pytest.raises(ValueError, match=r"does not define; it has \[.*'make_sleepy_feeder'"):
        resolve("tests.bench_helpers:nothing", "--feeder")


@pytest.mark.slow
def test_feeders_bench_feeder_recommends_processes_from_the_command_line() -> None:
    command = [sys.executable, "-m", "feeders", "bench", "--budget", "15"]
    done = subprocess.run(
        [*command, "--feeder", "tests.bench_helpers:make_sleepy_feeder"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "recommended: workers=" in done.stdout and "use_multiprocessing=True:" in done.stdout
    assert "workers=4 (threads)" in done.stdout  # the default counts: 2, 4 and the cores
    assert max(map(len, done.stdout.splitlines())) <= 120


def test_a_function_returning_a_feeder_is_profiled_as_built(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from feeders import bench

    code = bench.run(["--feeder", "tests.bench_helpers:make_arrays_feeder", "--budget", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "the feeder as built" in out and "recommended: workers=0" in out
