"""The reference MNIST harness and `feeders demo`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import feeders
from feeders.datasets import BUNDLED, mnist_source

FULL_MNIST = mnist_source() != BUNDLED


def test_mnist_model_is_the_guides_model() -> None:
    model = feeders.harness.mnist_model()
    assert [layer.name for layer in model.layers] == ["digits", "dense_1", "dense_2", "predictions"]
    assert [w.shape for w in model.get_weights()] == [
        (784, 64),
        (64,),
        (64, 64),
        (64,),
        (64, 10),
        (10,),
    ]
    assert model.layers[-1].activation.__name__ == "softmax"
    assert type(model.optimizer).__name__ == "RMSprop"


@pytest.mark.slow
@pytest.mark.skipif(not FULL_MNIST, reason="needs full MNIST (set FEEDERS_DATA_DIR)")
def test_harness_lands_in_the_guides_neighbourhood_on_full_mnist() -> None:
    """The guide: val accuracy ~0.965, test ~0.96. Per-seed spread here is ~0.95-0.96, so average 3."""
    results = [feeders.harness.run_mnist(seed=seed) for seed in (0, 1, 2)]
    assert all(r.num_train == 50_000 and r.num_validation == 10_000 for r in results)
    assert all(r.history["loss"][1] < r.history["loss"][0] for r in results)
    assert sum(r.val_accuracy for r in results) / 3 >= 0.95
    assert sum(r.test_accuracy for r in results) / 3 >= 0.95


@pytest.mark.slow
def test_demo_runs_offline_on_the_bundled_sample(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "FEEDERS_DATA_DIR": str(tmp_path / "none")}
    env.pop("KERAS_HOME", None)
    run = subprocess.run(
        [sys.executable, "-m", "feeders", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "bundled sample" in run.stdout
    assert "6,667 train / 1,333 validation / 2,000 test" in run.stdout.replace("\n", " ")
    assert "using the bundled 10,000-image sample" in run.stderr
