"""Without TensorFlow: arrays, generators, Sequences and ImageFileSequence train on JAX and torch.

TensorFlow is made unimportable (tests/no_tf_site) in a fresh process and its
workers, so this runs in the main environment too; CI also runs it in an
environment where TensorFlow is not installed at all.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = [name for name in ("jax", "torch") if importlib.util.find_spec(name)]


@pytest.fixture(scope="module", params=BACKENDS)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    env = {
        **os.environ,
        "KERAS_BACKEND": request.param,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "no_tf_site"), str(ROOT)]),
    }
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "scripts" / "no_tensorflow.py"),
            str(tmp_path_factory.mktemp("images")),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.slow
def test_every_kind_trains_without_tensorflow(run: dict) -> None:
    assert run["backend"] in BACKENDS
    assert set(run["losses"]) == {"arrays", "generator", "sequence-processes", "image-files"}
    assert all(math.isfinite(loss) for loss in run["losses"].values())
    assert run["tensorflow_imported"] is False


@pytest.mark.slow
@pytest.mark.parametrize(
    ("feature", "named"),
    [
        ("as_dataset", r"Feeder\.as_dataset\(\)"),
        ("distribute", r"feeders\.distribute\(\)"),
        ("decoder", r"decoder='tf'"),
        ("tf.data", r"A tf\.data\.Dataset source"),
    ],
)
def test_tensorflow_features_name_the_extra(run: dict, feature: str, named: str) -> None:
    message = run["refusals"][feature]
    assert re.search(named + r" needs TensorFlow, which is not installed", message), message
    assert 'pip install "feeders[tensorflow]"' in message


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_feeders_demo_trains_without_tensorflow(backend: str) -> None:
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "no_tf_site"), str(ROOT)]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "feeders", "demo", "--epochs", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    accuracy = float(re.search(r"test: loss [\d.]+, accuracy ([\d.]+)", done.stdout).group(1))
    assert accuracy > 0.7  # one epoch of the guide's model on the bundled sample: ~0.84
