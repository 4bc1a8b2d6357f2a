"""One suite, every source kind: exact contents, exactly once, seeded order, resume.

Each ``case_<kind>.py`` beside this file lists that kind's cases; a new source
kind joins by adding such a file, nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest

from tests import conformance
from tests.conformance.cases import BATCH_SIZE, NUM_CLASSES, NUM_SAMPLES, Case, conformance_arrays
from tests.keras_recorder import Recorder


def _all_cases() -> list[Case]:
    cases: list[Case] = []
    for module in pkgutil.iter_modules(conformance.__path__):
        if module.name.startswith("case_"):
            cases += importlib.import_module(f"tests.conformance.{module.name}").CASES
    return cases


CASES = _all_cases()


@pytest.fixture(params=CASES, ids=str)
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


_built: list = []


@pytest.fixture(autouse=True)
def _close_feeders():
    """Worker pools end with the test that made them, not at garbage collection."""
    yield
    while _built:
        _built.pop().close()


def build(case: Case, *, shuffle: bool = True, seed: int = 7):
    x, y = conformance_arrays()
    feeder = case.make(x, y, batch_size=BATCH_SIZE, shuffle=shuffle, seed=seed)
    _built.append(feeder)
    return feeder


def epoch_ids(feeder, n: int, start: int = 0) -> list[np.ndarray]:
    """The sample ids of each batch, after checking each row is intact."""
    batches = []
    for x, y, _ in feeder.epoch(n, start):
        x, y = np.asarray(x), np.asarray(y)
        ids = x[:, 0].astype(np.int64)
        np.testing.assert_array_equal(x[:, 1], 2 * x[:, 0])
        np.testing.assert_array_equal(x[:, 2], 3 * x[:, 0])
        np.testing.assert_array_equal(y, ids % NUM_CLASSES)
        batches.append(ids)
    return batches


def test_unshuffled_batches_are_exact_slices(case: Case) -> None:
    feeder = build(case, shuffle=False)
    batches = epoch_ids(feeder, 0)
    expected = np.array_split(np.arange(NUM_SAMPLES), range(BATCH_SIZE, NUM_SAMPLES, BATCH_SIZE))
    assert [b.tolist() for b in batches] == [e.tolist() for e in expected]
    assert feeder.num_batches in (None, len(expected))


@pytest.mark.parametrize("epoch", [0, 1, 2])
def test_every_sample_exactly_once_per_epoch(case: Case, epoch: int) -> None:
    ids = np.concatenate(epoch_ids(build(case), epoch))
    np.testing.assert_array_equal(np.sort(ids), np.arange(NUM_SAMPLES))
    assert len(ids) == NUM_SAMPLES


def test_batch_sizes(case: Case) -> None:
    sizes = [len(b) for b in epoch_ids(build(case), 0)]
    if case.exact_batches:
        expected = [BATCH_SIZE] * (NUM_SAMPLES // BATCH_SIZE) + [NUM_SAMPLES % BATCH_SIZE]
        assert sorted(sizes) == sorted(expected)
    assert sum(sizes) == NUM_SAMPLES


def test_same_seed_same_order(case: Case) -> None:
    first = [b.tolist() for b in epoch_ids(build(case, seed=3), 1)]
    second = [b.tolist() for b in epoch_ids(build(case, seed=3), 1)]
    assert first == second


def test_next_epoch_reshuffles(case: Case) -> None:
    if not case.reshuffles:
        pytest.skip(f"{case.name} keeps the order its pipeline gives")
    feeder = build(case)
    first = np.concatenate(epoch_ids(feeder, 0))
    second = np.concatenate(epoch_ids(feeder, 1))
    assert not np.array_equal(first, second)
    other_seed = np.concatenate(epoch_ids(build(case, seed=8), 0))
    assert not np.array_equal(first, other_seed)


@pytest.mark.parametrize("start", [0, 1, 4, 10])
def test_start_resumes_with_exactly_the_remaining_batches(case: Case, start: int) -> None:
    full = [b.tolist() for b in epoch_ids(build(case), 2)]
    resumed = [b.tolist() for b in epoch_ids(build(case), 2, start=start)]
    assert resumed == full[start:]


# -- through Keras: what fit trains on, and what predict returns -------------------------------


def _feeder(built):
    return getattr(built, "feeder", built)  # the dict case wraps its feeder for epoch_ids


def test_fit_trains_on_exactly_the_batches_of_epoch_n(case: Case) -> None:
    epochs = 1 if not case.reshuffles and "single" in case.name else 2
    expected = [b.tolist() for n in range(epochs) for b in epoch_ids(build(case), n)]
    feeder = _feeder(build(case))
    recorder = Recorder(named=isinstance(feeder.spec.x, dict))
    recorder.model.fit(feeder, epochs=epochs, verbose=0)
    assert recorder.seen == expected
    assert feeder.position == (epochs, 0)


def test_predict_returns_rows_in_source_order_and_keeps_the_position(case: Case) -> None:
    feeder = _feeder(build(case, shuffle=True))
    recorder = Recorder(named=isinstance(feeder.spec.x, dict))
    rows = recorder.echo.predict(feeder, verbose=0)
    np.testing.assert_array_equal(rows[:, 0], np.arange(NUM_SAMPLES))
    assert feeder.position == (0, 0)


def test_evaluate_reads_in_order_and_a_later_fit_starts_at_epoch_0(case: Case) -> None:
    if "single" in case.name:
        pytest.skip("a single-pass iterator has one pass: evaluate or fit, not both")
    expected = [b.tolist() for b in epoch_ids(build(case), 0)]
    feeder = _feeder(build(case))
    recorder = Recorder(named=isinstance(feeder.spec.x, dict))
    recorder.model.evaluate(feeder, verbose=0)
    recorder.model.fit(feeder, epochs=1, verbose=0)
    assert recorder.seen == expected
