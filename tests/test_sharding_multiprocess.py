"""Two real data-parallel processes on 127.0.0.1 train the MNIST reference model through sharded feeders.

Each backend's run is ``tests/scripts/sharded_training.py`` started twice
(``python`` subprocesses, as users launch them), bounded by a timeout: a
process that hangs in a collective at an epoch end fails the test instead of
hanging it. Each process records the sample ids of every batch Keras took;
across the two, every one of the 1,001 samples is trained exactly once per
epoch, nothing else is shared but masked padding, and the step counts are equal.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "scripts" / "sharded_training.py"
NUM_SAMPLES, STEPS = 1001, 16  # ceil(1001 / (2 processes * 32))
TIMEOUT_S = 540


def _free_port_pair() -> int:
    """A port ``p`` with ``p`` and ``p + 1`` free on 127.0.0.1 (TF needs one per worker)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return int(port)
    raise RuntimeError("no two consecutive free ports on 127.0.0.1")


def _run_two(backend: str, tmp_path: Path) -> list[dict[str, Any]]:
    port = _free_port_pair()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": backend}
    env.pop("TF_CONFIG", None)
    outs = [tmp_path / f"{backend}{i}.json" for i in range(2)]
    logs = [open(tmp_path / f"{backend}{i}.log", "w") for i in range(2)]  # noqa: SIM115
    procs = [
        subprocess.Popen(
            [sys.executable, str(SCRIPT), backend, str(i), str(port), str(outs[i])],
            env=env,
            stdout=logs[i],
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        for i in range(2)
    ]
    try:
        for proc in procs:
            proc.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"a {backend} process did not finish in {TIMEOUT_S} s (hung at an epoch end?)")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
    for i, proc in enumerate(procs):
        tail = (tmp_path / f"{backend}{i}.log").read_text()[-3000:]
        assert proc.returncode == 0, f"{backend} process {i} exited {proc.returncode}:\n{tail}"
    return [json.loads(out.read_text()) for out in outs]


def _check(results: list[dict[str, Any]]) -> None:
    assert [r["shard"] for r in results] == [[0, 2], [1, 2]]  # shard="auto" found both
    # Three epochs (two on arrays, one on a Sequence), the same steps on both processes.
    assert results[0]["steps"] == results[1]["steps"] == [STEPS, STEPS, STEPS]
    # Keras' build peek (JAX) gets a placeholder batch of zero weights, no epoch
    # (NOTE [ Keras' build peek ]): every pass with real samples is a trained epoch.
    trained = [[p for p in r["passes"] if any(p)] for r in results]
    assert [len(p) for p in trained[0]] == [len(p) for p in trained[1]] == [STEPS] * 3
    for epoch in range(3):
        ids = [[i for batch in t[epoch] for i in batch] for t in trained]
        assert sorted(ids[0] + ids[1]) == list(range(NUM_SAMPLES)), f"epoch {epoch}"
        assert not set(ids[0]) & set(ids[1])
    # Data parallel: the collectives kept the two replicas' weights identical.
    assert results[0]["weights"] == pytest.approx(results[1]["weights"], rel=1e-5)


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT_S + 60)
def test_jax_distributed_data_parallel(tmp_path: Path) -> None:
    pytest.importorskip("jax")
    _check(_run_two("jax", tmp_path))


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT_S + 60)
def test_tensorflow_multi_worker_mirrored(tmp_path: Path) -> None:
    _check(_run_two("tensorflow", tmp_path))
