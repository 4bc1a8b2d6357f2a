"""One process per Keras backend, started side by side (Keras picks its backend at import).

Why a helper: the backend matrix (test_backends.py), the sparse/ragged matrix
(test_sparse_ragged.py) and the cross-backend ``feeders validate`` check each
run one command under every installed backend at once, and need each run's
stdout, or its stderr when it fails.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_per_backend(
    backends: Iterable[str],
    command: Callable[[str], list[str]],
    env: Callable[[str], dict[str, str]] = lambda backend: {},
    timeout: float = 500,
) -> dict[str, str]:
    """``{backend: stdout}`` of ``command(backend)`` run with ``KERAS_BACKEND=backend``."""
    base = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = {
        backend: subprocess.Popen(
            command(backend),
            env={**base, "KERAS_BACKEND": backend, **env(backend)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for backend in backends
    }
    outputs = {}
    for backend, run in runs.items():
        out, err = run.communicate(timeout=timeout)
        assert run.returncode == 0, f"{backend}:\n{err[-3000:]}"
        outputs[backend] = out
    return outputs
