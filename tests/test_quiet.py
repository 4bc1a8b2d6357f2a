"""Quiet by default: no TensorFlow start-up lines from `feeders` commands or their workers.

Each check runs a real process (`python -m feeders ...` or `python -`), since
what is filtered is that process's file descriptor 2, and each has a loud twin
(`--verbose`, or no `silence()`) showing the lines are there to be filtered.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from feeders.quiet import is_tf_log_line

ROOT = Path(__file__).parents[1]
MARKERS = ("absl::InitializeLog", "cuInit", "I0000 ", "W0000 ", "E0000 ", "oneDNN")
REAL_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796142420.035052    5948 port.cc:153] oneDNN custom operations are on.",
    "I0000 00:00:1796142420.035359    5948 cudart_stub.cc:31] Could not find cuda drivers",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow "
    "with the appropriate compiler flags.",
    "E0000 00:00:1796142422.852749    5948 cuda_platform.cc:52] failed call to cuInit: INTERNAL",
    "W0000 00:00:1796142971.276090   19649 generator_dataset_op.cc:113] Error occurred when "
    "finalizing GeneratorDataset iterator: FAILED_PRECONDITION",
    "2024-01-01 12:00:00.123456: I tensorflow/core/platform/cpu_feature_guard.cc:182] This",
]
KEPT_LINES = [
    "Traceback (most recent call last):",
    "ValueError: `batch_size` must be a positive integer, but got batch_size=0.",
    "F0000 00:00:1796142422.852749    5948 check.cc:1] Check failed: a fatal line stays",
    "feeders: full MNIST not found; using the bundled 10,000-image sample.",
    "",
]


@pytest.mark.parametrize("line", REAL_LINES)
def test_tensorflow_log_lines_are_recognised(line: str) -> None:
    assert is_tf_log_line(line) and is_tf_log_line(line.encode())


@pytest.mark.parametrize("line", KEPT_LINES)
def test_other_lines_are_kept(line: str) -> None:
    assert not is_tf_log_line(line)


def python(code: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("FEEDERS_QUIET", None)
    return subprocess.run(
        [sys.executable, *args],
        input=code,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


WORKERS = """
import sys

import feeders
from feeders import quiet
from tests.bench_helpers import TensorFlowSequence

if __name__ == "__main__":
    if sys.argv[1] == "quiet":
        quiet.silence()
    with feeders.adapt(TensorFlowSequence(), workers=2, use_multiprocessing=True) as feeder:
        print(sum(len(x) for x, _, _ in feeder.epoch(0)), "samples")
    print("Traceback-like line kept", file=sys.stderr)
"""


def test_worker_processes_are_quiet_too_and_other_stderr_passes_through(tmp_path: Path) -> None:
    script = tmp_path / "workers.py"
    script.write_text(WORKERS)
    loud = python("", str(script), "loud")
    assert loud.returncode == 0, loud.stderr
    assert [m for m in MARKERS if m in loud.stderr]  # the workers do print them
    quiet = python("", str(script), "quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert "32 samples" in quiet.stdout
    assert not [m for m in MARKERS if m in quiet.stderr], quiet.stderr
    assert "Traceback-like line kept" in quiet.stderr


@pytest.mark.slow
def test_demo_is_quiet_and_verbose_brings_the_logs_back(tmp_path: Path) -> None:
    quiet = python("", "-m", "feeders", "demo", "--epochs", "1", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert not [m for m in MARKERS if m in quiet.stdout + quiet.stderr], quiet.stderr
    assert "MNIST: epoch 1/1: loss" in quiet.stdout  # the progress line of the epoch
    verbose = python("", "-m", "feeders", "demo", "--epochs", "1", "--verbose", cwd=tmp_path)
    assert verbose.returncode == 0, verbose.stderr
    assert [m for m in MARKERS if m in verbose.stderr]


@pytest.mark.slow
def test_the_checkpoint_example_exits_without_iterator_finalizing_errors(tmp_path: Path) -> None:
    done = python("", str(ROOT / "examples" / "09_checkpoint_restore.py"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "resumed run: trained" in done.stdout
    assert "finalizing GeneratorDataset iterator" not in done.stderr
