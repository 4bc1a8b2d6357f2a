"""The same batches, in the same order, through ``model.fit`` on every Keras backend.

Keras picks its backend at import, so each backend runs in its own process
(``tests/scripts/backend_batches.py``, one per backend, side by side): the
guide's four Keras calls (``fit`` with ``validation_data`` over two epochs,
``evaluate``, ``predict``) over every source kind, with a model that records
a digest of each batch a step receives. Every backend must log exactly the
digests of ``Feeder.epoch(0)``, ``epoch(1)``, ... in order, and see its own
tensor type. Backends that are not installed are skipped (CI installs all three).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from feeders.images.samples import write_photos
from tests.backend_runs import ROOT, run_per_backend

SCRIPT = ROOT / "tests" / "scripts" / "backend_batches.py"
BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
INSTALLED = [name for name, module in BACKENDS.items() if importlib.util.find_spec(module)]
CASES = [
    "arrays",
    "arrays-dict-sample-weight",
    "generator",
    "sequence-w0",
    "sequence-threads",
    "sequence-processes",
    "image-files",
    "plug-in",
]
if importlib.util.find_spec("tensorflow"):
    CASES.append("tf.data")  # the tf.data source on JAX and torch too (TF only makes the data)
# The leaf type a model step sees: JAX on the CPU gets NumPy (nothing to put ahead).
TENSOR_MODULE = {"tensorflow": "tensorflow", "jax": "numpy", "torch": "torch"}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    images = tmp_path_factory.mktemp("images")
    write_photos(images, 20, sizes=(20, 40))
    reference = "jax" if "jax" in INSTALLED else INSTALLED[0]  # the quickest to start
    outputs = run_per_backend(
        INSTALLED,
        lambda backend: [sys.executable, str(SCRIPT), str(images)],
        lambda backend: {"FEEDERS_EXPECTED": str(backend == reference)},
    )
    found = {backend: json.loads(out) for backend, out in outputs.items()}
    found["expected"] = {
        case: [tuple(entry) for entry in run["expected"]]
        for case, run in found[reference]["cases"].items()
    }
    return found


@pytest.mark.slow
@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("case", CASES)
def test_fit_evaluate_predict_see_the_epochs_in_order(
    logs: dict[str, Any], backend: str, case: str
) -> None:
    if backend not in logs:
        pytest.skip(f"{backend} is not installed")
    assert logs[backend]["backend"] == backend
    found = logs[backend]["cases"][case]
    assert [tuple(entry[:2]) for entry in found["log"]] == logs["expected"][case]
    assert found["seen"] == [TENSOR_MODULE[backend]]


# arrays (the reference) and a generator: other kinds are compared within TF in test_validate.
VALIDATE = [sys.executable, "-m", "feeders", "validate", "--epochs", "1", "--source", "generator"]


@pytest.mark.slow
def test_feeders_validate_gives_one_stream_and_one_loss_band_on_every_backend(
    tmp_path: Path,
) -> None:
    """`feeders validate` under each backend: every run identical, the same batch stream
    everywhere, and the reference models' final losses within one band (backends differ
    only in float rounding, never in the data)."""
    outputs = run_per_backend(
        INSTALLED, lambda backend: [*VALIDATE, "--json", str(tmp_path / f"{backend}.json")]
    )
    rows = {}
    for backend, out in outputs.items():
        assert "runs identical" in out
        rows[backend] = json.loads((tmp_path / f"{backend}.json").read_text())
        assert {row["backend"] for row in rows[backend]} == {backend}
    by_model: dict[str, list[dict[str, Any]]] = {}
    for backend_rows in rows.values():
        for row in backend_rows:
            assert row["ok"], row
            by_model.setdefault(row["model"], []).append(row)
    assert set(by_model) == {"mnist", "multihead"}
    for model, found in by_model.items():
        assert len({row["batches_sha256"] for row in found}) == 1, model
        losses = [row["final_loss"] for row in found]
        assert max(losses) - min(losses) <= 1e-3 * max(losses), (model, losses)
