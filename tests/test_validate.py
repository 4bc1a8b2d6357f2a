"""`feeders validate`: digests and final weights compared across every source kind."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import feeders
from feeders.cli import main
from feeders.harness import validate as validation
from feeders.harness.validate import (
    RECIPES,
    ArraySequence,
    Reference,
    batch_digest,
    from_arrays,
    validate,
)

BATCH_SIZE = 16


@pytest.fixture(scope="module")
def small_mnist() -> Reference:
    """160 MNIST images: 10 batches, enough to tell an order apart."""
    x, y, _, _ = feeders.harness.mnist.mnist_arrays()
    return Reference("mnist", x[:160], y[:160], BATCH_SIZE, feeders.harness.mnist_model, "160")


def test_the_digest_covers_bytes_dtype_shape_and_structure() -> None:
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.arange(4)
    digest = batch_digest((x, y, None))
    assert digest == batch_digest((x.copy(), y.copy(), None))
    assert digest != batch_digest((x[::-1], y, None))
    assert digest != batch_digest((x.astype(np.float64), y, None))
    assert digest != batch_digest((x.reshape(4, 3, 1), y, None))
    assert digest != batch_digest((x, y, np.ones(4, np.float32)))
    assert digest != batch_digest(([x], y, None))


def test_the_digest_ignores_how_a_structure_is_spelled() -> None:
    """tf.data yields tuples for lists and sorts dict keys; the batch is the same."""
    a, b = np.zeros((2, 1), np.float32), np.ones((2, 2), np.float32)
    assert batch_digest(([a, b], None, None)) == batch_digest(((a, b), None, None))
    assert batch_digest(({"p": a, "q": b}, None, None)) == batch_digest(
        ({"q": b, "p": a}, None, None)
    )
    assert batch_digest(({"p": a, "q": b}, None, None)) != batch_digest(
        ({"p": b, "q": a}, None, None)
    )


def test_the_array_sequence_slices_every_part() -> None:
    x = {"a": np.arange(10), "b": np.arange(10) * 2}
    sequence = ArraySequence(x, [np.arange(10)], 4)
    assert len(sequence) == 3
    last_x, last_y = sequence[2]
    np.testing.assert_array_equal(last_x["b"], [16, 18])
    np.testing.assert_array_equal(last_y[0], [8, 9])


def test_every_source_kind_gives_the_same_batches_and_weights(small_mnist: Reference) -> None:
    multihead = validation.multihead_reference(num_samples=48)
    rows = validate([small_mnist, multihead], epochs=1)
    assert [(row.model, row.recipe) for row in rows] == [
        (model, recipe) for model in ("mnist", "multihead") for recipe in RECIPES
    ]
    assert [row.kind for row in rows[: len(RECIPES)]] == [
        "arrays",
        "tf.data",
        "generator",
        "sequence",
        "sequence",
    ]
    assert all(row.ok for row in rows), [row for row in rows if not row.ok]
    assert {row.batches for row in rows} == {10, 2}
    assert len({row.final_loss for row in rows if row.model == "mnist"}) == 1


def _reversed(x, y, batch_size):
    """Every batch right, the order wrong."""
    batches = [(bx, by) for bx, by, _ in from_arrays(x, y, batch_size).epoch(0)][::-1]
    return feeders.adapt(lambda: iter(batches), shuffle=False, num_batches=len(batches))


def _float64(x, y, batch_size):
    """Same values as float64 (a generator keeps them so): the model casts back, so only the digests tell."""
    return RECIPES["generator"](x.astype(np.float64), y, batch_size)


def _short(x, y, batch_size):
    """Drops the last batch."""
    return from_arrays(x[:-batch_size], y[:-batch_size], batch_size)


def test_a_wrong_order_is_caught(small_mnist: Reference) -> None:
    rows = validate([small_mnist], {"arrays": from_arrays, "reversed": _reversed}, epochs=1)
    assert rows[0].ok
    assert (rows[1].digests_match, rows[1].weights_match) == (False, False)
    assert "batches differ from #0 (10 in all)" in rows[1].detail
    assert "max |Δweight|" in rows[1].detail


def test_a_silent_cast_is_caught_by_the_digests_alone(small_mnist: Reference) -> None:
    rows = validate([small_mnist], {"arrays": from_arrays, "float64": _float64}, epochs=1)
    assert (rows[1].digests_match, rows[1].weights_match) == (False, True)
    assert rows[1].detail == "batches differ from #0 (10 in all)"


def test_a_missing_batch_is_caught(small_mnist: Reference) -> None:
    rows = validate([small_mnist], {"arrays": from_arrays, "short": _short}, epochs=1)
    assert (rows[1].batches, rows[1].ok) == (9, False)
    assert rows[1].detail.startswith("9 batches, expected 10")


@pytest.fixture
def tiny_references(monkeypatch: pytest.MonkeyPatch, small_mnist: Reference) -> None:
    """The command on 160 MNIST images and 32 multi-head samples, so it runs in seconds."""
    multihead = validation.multihead_reference(num_samples=32)
    monkeypatch.setattr(validation, "mnist_reference", lambda path, full: small_mnist)
    monkeypatch.setattr(validation, "multihead_reference", lambda: multihead)


def test_the_command_prints_the_table_and_exits_0(
    tiny_references: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--epochs", "1", "--model", "multihead"]) == 0
    out = capsys.readouterr().out
    assert "feeders validate: 1 epochs, shuffle=False" in out
    assert out.count("match") == 2 * len(RECIPES)
    assert "multihead: 32 random samples, batch size 32, seed 0" in out
    assert f"all {len(RECIPES)} runs identical" in out


def test_the_command_exits_1_on_a_mismatch(
    tiny_references: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(validation.RECIPES, "generator", _reversed)
    assert main(["validate", "--epochs", "1", "--model", "mnist", "--source", "generator"]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out
    assert "mnist/generator (generator kind): batches differ from #0" in out
    assert "1 of 2 runs differ from the arrays source" in out


@pytest.mark.slow
def test_python_m_feeders_validate_runs_offline() -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run(
        [sys.executable, "-m", "feeders", "validate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"all {2 * len(RECIPES)} runs identical" in run.stdout
    assert "6,400 MNIST images" in run.stdout
