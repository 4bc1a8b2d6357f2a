"""Worker processes where Keras users define their datasets: notebooks, ``python -``, ``python -c``.

Each case trains a ``keras.utils.PyDataset`` subclass defined in the user's
``__main__`` (holding a lambda) through ``model.fit`` with
``workers=2, use_multiprocessing=True``, in a real interpreter or Jupyter kernel,
and checks that no worker outlives ``feeder.close()``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import feeders
from tests.workers_helpers import worker_pids

ROOT = Path(__file__).resolve().parents[1]

IMPORTS = """\
import os
import numpy as np
import keras
import feeders
from tests.workers_helpers import worker_pids
"""

DATASET = """\
class Squares(keras.utils.PyDataset):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.target = lambda x: (x ** 2).sum(axis=1, keepdims=True)

    def __len__(self):
        return 6

    def __getitem__(self, index):
        x = np.random.default_rng(index).random((8, 3), dtype=np.float32)
        return x, self.target(x).astype(np.float32)
"""

FIT = """\
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
feeder = feeders.adapt(Squares(), workers=2, use_multiprocessing=True)
history = model.fit(feeder, epochs=2, verbose=0)
workers = worker_pids()
feeder.close()
print("FIT", len(history.history["loss"]), bool(np.isfinite(history.history["loss"]).all()),
      len(workers), len(worker_pids()))
"""

SCRIPT = IMPORTS + DATASET + FIT
EXPECTED = "FIT 2 True 2 0"  # two epochs, finite losses, 2 workers during fit, none after


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


def run(command: list[str], stdin: str | None = None, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        text=True,
        env=environment(),
        cwd=cwd,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_script_piped_to_python_stdin_trains_with_processes() -> None:
    assert EXPECTED in run([sys.executable, "-"], stdin=SCRIPT)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_python_c_trains_with_processes() -> None:
    assert EXPECTED in run([sys.executable, "-c", SCRIPT])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_script_without_a_main_guard_trains_with_processes(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    assert EXPECTED in run([sys.executable, str(script)], cwd=tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_notebook_cell_dataset_trains_with_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(code) for code in (IMPORTS, DATASET, FIT)]
    client = nbclient.NotebookClient(notebook, timeout=240, kernel_name="python3")
    client.execute(cwd=str(ROOT))
    outputs = notebook.cells[-1].outputs
    text = "".join(output.get("text", "") for output in outputs)
    assert EXPECTED in text, outputs


class LambdaSequence:
    """A Sequence whose batches come from a lambda: pickled by value for the workers."""

    def __init__(self) -> None:
        self.make = lambda index: np.full((4, 2), index, np.float32)

    def __len__(self) -> int:
        return 5

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        x = self.make(index)
        return x, x.sum(axis=1, keepdims=True)


@pytest.mark.timeout(120)
def test_a_sequence_holding_a_lambda_trains_with_processes() -> None:
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    before = worker_pids()
    feeder = feeders.adapt(LambdaSequence(), workers=2, use_multiprocessing=True, shuffle=False)
    try:
        history = model.fit(feeder, epochs=2, verbose=0)
        assert len(worker_pids() - before) == 2
        batches = [x[:, 0].tolist() for x, _, _ in feeder.source.epoch(2)]
    finally:
        feeder.close()
    assert np.isfinite(history.history["loss"]).all()
    assert batches == [[float(index)] * 4 for index in range(5)]
    assert worker_pids() <= before


SLOW_DATASET = """\
import time


class Slow(keras.utils.PyDataset):
    def __len__(self):
        return 8

    def __getitem__(self, index):
        if index == 3:
            time.sleep(120)
        x = np.full((4, 2), index, np.float32)
        return x, x[:, :1]


model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
model.fit(np.zeros((4, 2), np.float32), np.zeros((4, 1), np.float32), verbose=0)  # traced now
feeder = feeders.adapt(Slow(), workers=2, use_multiprocessing=True, shuffle=False)
"""

SLOW_FIT = """\
started = time.time()
model.fit(feeder, epochs=1, verbose=0)
"""

AFTER = """\
print("AFTER", round(time.time() - started, 1), len(worker_pids()))
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_interrupting_the_kernel_during_a_slow_batch_ends_the_cell_and_stops_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(code) for code in (IMPORTS, SLOW_DATASET, SLOW_FIT, AFTER)
    ]
    cell_timeout = 20  # then nbclient interrupts the kernel, as the stop button does
    client = nbclient.NotebookClient(
        notebook,
        timeout=240,
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=True,
    )
    client.timeout_func = lambda cell: cell_timeout if "model.fit(feeder" in cell.source else 240
    client.execute(cwd=str(ROOT))
    errors = [out for out in notebook.cells[2].outputs if out.get("output_type") == "error"]
    assert errors and "KeyboardInterrupt" in str(errors[0]), notebook.cells[2].outputs
    text = "".join(output.get("text", "") for output in notebook.cells[3].outputs)
    _, elapsed, workers = text.split()
    assert float(elapsed) < cell_timeout + 2 + 5  # not the 120 s of the slow batch
    assert workers == "0"
    print(f"the cell ended {float(elapsed) - cell_timeout:.1f} s after the interrupt")
