"""Every script in examples/ runs (quick mode) and prints the metrics it claims."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
Check = tuple[str, Callable[[re.Match[str]], bool]]


def _above(threshold: float) -> Callable[[re.Match[str]], bool]:
    return lambda m: float(m["v"]) > threshold


def _present(m: re.Match[str]) -> bool:
    return True


ACCURACY = (r"test accuracy: (?P<v>0\.\d+)", _above(0.8))
# What each example must print: a pattern, and a test of what it matched.
EXPECTED: dict[str, list[Check]] = {
    "01_end_to_end_mnist.py": [
        (r"epoch 1: loss .*\nepoch 2: loss [\d.]+, accuracy [\d.]+, val_loss", _present),
        (r"val_accuracy (?P<v>0\.\d+)\nEvaluate", _above(0.8)),
        ACCURACY,
        (r"predictions shape: \(3, 10\)", _present),
    ],
    "02_numpy_split.py": [
        (r"split\(0\.2\): 5,120 train / 1,280 validation", _present),
        (r"val accuracy: (?P<v>0\.\d+)", _above(0.8)),
        (r"identical to keras validation_split: True", _present),
        ACCURACY,
    ],
    "03_tf_data.py": [
        (r"full epochs: loss (?P<a>[\d.]+) -> [\d.]+ -> (?P<b>[\d.]+)", lambda m: m["b"] < m["a"]),
        ACCURACY,
        (r"steps_per_epoch=40 of the 100 batches in a pass", _present),
        (r"epoch 1: 40 batches, .*\nepoch 2: 40 batches, .*\nepoch 3: 40 batches", _present),
        (r"trained 120 batches; the next epoch starts at batch 20 of pass 1", _present),
    ],
    "04_validation_datasets.py": [
        (r"validation_data: val loss [\d.]+", _present),
        (r"validation_steps=10: 10 validation batches per epoch \(of 17\)", _present),
        (r"split\(0\.2\) of a tf\.data pipeline: 67 / 17 batches", _present),
        (r"val accuracy: (?P<v>0\.\d+)", _above(0.7)),
    ],
    "05_pydataset.py": [
        (r"wrote 64 JPEG files \(4 classes\)", _present),
        (r"Feeder\(kind='sequence', num_batches=4, .*\(None, 200, 200, 3\) float64", _present),
        (
            r"epoch 1: loss (?P<a>[\d.]+)(.|\n)*epoch 5: loss (?P<b>[\d.]+)",
            lambda m: m["b"] < m["a"],
        ),
    ],
    "06_weights.py": [
        *(
            (rf"{re.escape(name)}: test accuracy (?P<v>0\.\d+), class 5 recall", _above(0.8))
            for name in (
                "class_weight (arrays)",
                "sample_weight (arrays)",
                "sample_weight (tf.data)",
                "class_weight (tf.data)",
            )
        ),
        (r"class_weight and sample_weight train identical weights: True", _present),
    ],
    "07_multi_io.py": [
        (
            r"model diagram: .*\.png|model diagram skipped: .*`pip install pydot`.*"
            r"`sudo apt-get install graphviz`",
            _present,
        ),
        (r"lists: class_output_loss [\d.]+, loss [\d.]+, score_output_loss", _present),
        (r"lists and dicts train identical weights: True", _present),
        (r"loss_weights \(tf\.data\): .*score_output_mean_absolute_error", _present),
        (r"score_output unchanged with a None loss: True", _present),
        (r"score_output unchanged with the output omitted: True", _present),
    ],
    "08_callbacks.py": [
        (r"early stopping: trained (?P<v>\d+) of 20 epochs", lambda m: 2 < int(m["v"]) < 20),
        (r"checkpoints: \['mymodel_1\.keras', ", _present),
        (r"csv rows: (?P<v>\d+), columns: \['epoch', 'learning_rate', 'loss'", _present),
        (r"per-batch losses recorded: (?P<v>\d+)", lambda m: int(m["v"]) % 80 == 0),
        (r"tensorboard event files: 2 \(train, validation\)|TensorBoard skipped", _present),
    ],
    "09_checkpoint_restore.py": [
        (r"200 batches per epoch, 2 epochs, checkpoints every 100 batches", _present),
        (r"first run: simulated crash after 150 batches", _present),
        (
            r"resumed run: trained (?P<a>\d+) batches \(expected (?P<b>\d+):",
            lambda m: m["a"] == m["b"],
        ),
        ACCURACY,
    ],
}


def test_every_example_is_checked() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("[0-9]*.py")) == sorted(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs_and_prints_its_metrics(script: str, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    for pattern, check in EXPECTED[script]:
        match = re.search(pattern, run.stdout)
        assert match, f"{script} did not print /{pattern}/:\n{run.stdout}"
        assert check(match), f"{script}: {match.group(0)!r} fails its check"
