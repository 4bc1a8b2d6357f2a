"""Tests for feeders.workers: order, contents, seeds, failures and clean shutdown.

Each worker process is a fresh interpreter ("spawn"), so the behaviour tests
share one module-scoped process pool per worker count and swap its dataset with
``update()`` (which exercises update() on every use); failure and shutdown tests,
which stop their workers, use fresh pools.
"""

from __future__ import annotations

import gc
import logging
import os
import pickle
import signal
import sys
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from feeders.errors import (
    RemoteFailure,
    WorkerError,
    WorkerTraceback,
    raise_with_context,
    where,
)
from feeders.workers import WorkerPool, batch_rng, shm
from feeders.workers.shm import NAME_PREFIX, SHM_DIR
from tests.workers_helpers import (
    KINDS,
    Arrays,
    AugmentError,
    DiesOnLoad,
    Draws,
    Exits,
    ExitsAfterSlow,
    Failing,
    FailsAfterSlow,
    Identity,
    Imports,
    Pids,
    Regression,
    Slow,
    Unloadable,
    UsesKerasOps,
    expected,
    worker_pids,
)

SEED = 7
QUEUE = 4
MODES = ["caller", "threads-1", "threads-2", "processes-1", "processes-2"]
PROCESS_MODES = ["processes-1", "processes-2"]


# -- fixtures and helpers ---------------------------------------------------------------


def our_segments() -> set[str]:
    """Shared-memory entries this test process created (named feeders_<pid>_...)."""
    return {name for name in os.listdir(SHM_DIR) if name.startswith(f"{NAME_PREFIX}{os.getpid()}_")}


def child_pids() -> set[int]:
    return worker_pids()


def assert_released(pids: set[int], segments_before: set[str]) -> None:
    """Every process in ``pids`` is gone (reaped, not a zombie) and no segment was left behind."""
    gc.collect()
    assert pids, "the test should have seen worker processes"
    assert not pids & child_pids()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert our_segments() <= segments_before


@pytest.fixture(scope="module")
def shared_pools() -> Iterator[dict[int, WorkerPool]]:
    children_before = child_pids()
    pools = {
        workers: WorkerPool(
            Arrays(), workers=workers, use_multiprocessing=True, max_queue_size=QUEUE, seed=SEED
        )
        for workers in (1, 2)
    }
    yield pools
    for pool in pools.values():
        pool.close()
    gc.collect()
    assert child_pids() <= children_before  # empty when run alone
    assert our_segments() == set()


@pytest.fixture
def make_pool(shared_pools: dict[int, WorkerPool]) -> Iterator[Any]:
    """``make_pool(mode, dataset)``: a fresh pool, or a shared process pool given ``dataset``."""
    fresh: list[WorkerPool] = []

    def make(mode: str, dataset: Any) -> WorkerPool:
        kind, _, count = mode.partition("-")
        if kind == "processes":
            pool = shared_pools[int(count)]
            pool.update(dataset)
            return pool
        workers = int(count) if count else 0
        fresh.append(WorkerPool(dataset, workers=workers, max_queue_size=QUEUE, seed=SEED))
        return fresh[-1]

    yield make
    for pool in fresh:
        pool.close()


def fresh_process_pool(dataset: Any, workers: int = 1, **options: Any) -> WorkerPool:
    options.setdefault("max_queue_size", QUEUE)
    return WorkerPool(dataset, workers=workers, use_multiprocessing=True, seed=SEED, **options)


def assert_same_batch(actual: Any, reference: Any) -> None:
    assert type(actual) is type(reference)
    if isinstance(reference, dict):
        assert list(actual) == list(reference)
        for key in reference:
            assert_same_batch(actual[key], reference[key])
    elif isinstance(reference, list | tuple):
        assert len(actual) == len(reference)
        for part, expected_part in zip(actual, reference, strict=True):
            assert_same_batch(part, expected_part)
    else:
        assert actual.dtype == reference.dtype
        np.testing.assert_array_equal(actual, reference)


# -- order and contents -------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_batches_come_in_the_given_order_with_exact_contents(make_pool: Any, mode: str) -> None:
    order = [5, 2, 7, 0, 1, 9, 3, 3]
    for kind in KINDS:
        pool = make_pool(mode, Arrays(kind=kind, offset=len(kind)))
        for epoch in (0, 1):
            batches = list(pool.run_epoch(epoch, order))
            assert len(batches) == len(order)
            for index, batch in zip(order, batches, strict=True):
                assert_same_batch(batch, expected(index, offset=len(kind), kind=kind))


@pytest.mark.parametrize("mode", PROCESS_MODES)
def test_process_batches_are_the_callers_own_arrays(make_pool: Any, mode: str) -> None:
    pool = make_pool(mode, Arrays(kind="array"))
    list(pool.run_epoch(0, [0]))  # the first batch ever travels pickled and sizes the slots
    kept = list(pool.run_epoch(1, range(10)))  # more batches than slots: slots were reused
    for index, batch in enumerate(kept):
        assert batch.flags.owndata and batch.flags.writeable
        np.testing.assert_array_equal(batch, expected(index, kind="array"))


@pytest.mark.parametrize("mode", ["threads-2", "processes-2"])
def test_a_slow_batch_is_built_around_but_never_overtaken(make_pool: Any, mode: str) -> None:
    pool = make_pool(mode, Slow(at=1, seconds=1.0))
    batches = list(pool.run_epoch(0, range(6)))
    assert [int(index[0]) for index, _ in batches] == list(range(6))
    finished = {int(index[0]): float(when[0]) for index, when in batches}
    assert finished[2] < finished[1] and finished[3] < finished[1]  # built ahead, held back


def test_at_most_max_queue_size_batches_are_in_flight() -> None:
    started: list[int] = []

    class Recording:
        def __getitem__(self, index: int) -> np.ndarray:
            started.append(index)
            return np.array([index])

    with WorkerPool(Recording(), workers=2, max_queue_size=3, seed=SEED) as pool:
        epoch = pool.run_epoch(0, range(20))
        next(epoch)
        deadline = time.monotonic() + 10
        while len(started) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # time enough to start more, were any allowed
        assert sorted(started) == [0, 1, 2, 3]  # batch 0 is the consumer's, 1..3 in flight


def test_an_epoch_taken_batch_by_batch_does_not_restart_workers(
    shared_pools: dict[int, WorkerPool],
) -> None:
    pool = shared_pools[2]
    pool.update(Arrays())
    list(pool.run_epoch(0, range(3)))
    workers = child_pids()
    for epoch in (1, 2):
        batches = pool.run_epoch(epoch, range(5))
        taken = [next(batches) for _ in range(5)]  # as Keras does with steps_per_epoch
        assert len(taken) == 5
    assert child_pids() == workers


@pytest.mark.parametrize("mode", ["threads-2", "processes-2"])
def test_stats_count_every_batch_per_worker(make_pool: Any, mode: str) -> None:
    pool = make_pool(mode, Arrays())
    list(pool.run_epoch(3, range(10)))
    stats = pool.stats
    assert stats["epoch"] == 3 and stats["batches"] == 10
    assert len(stats["batches_per_worker"]) == 2 and sum(stats["batches_per_worker"]) == 10
    assert 0 <= stats["mean_queue_occupancy"] <= QUEUE
    assert stats["consumer_wait_s"] >= 0


# -- random numbers ------------------------------------------------------------------------


def draws(pool: WorkerPool, epoch: int) -> list[dict[str, np.ndarray]]:
    return list(pool.run_epoch(epoch, range(6)))


@pytest.mark.parametrize("mode", MODES[1:])
def test_batch_rng_draws_match_the_calling_thread_whatever_the_workers(
    make_pool: Any, mode: str
) -> None:
    reference = WorkerPool(Draws(), workers=0, seed=SEED)
    pool = make_pool(mode, Draws())
    for epoch in (0, 1):
        got, want = draws(pool, epoch), draws(reference, epoch)
        for batch, expected_batch in zip(got, want, strict=True):
            np.testing.assert_array_equal(batch["batch_rng"], expected_batch["batch_rng"])


def test_draws_differ_across_batches_and_epochs(make_pool: Any) -> None:
    pool = make_pool("processes-2", Draws())
    rows = [batch[key] for epoch in (0, 1) for batch in draws(pool, epoch) for key in batch]
    assert len({row.tobytes() for row in rows}) == len(rows)


def test_legacy_global_rngs_are_seeded_per_batch_in_processes(
    shared_pools: dict[int, WorkerPool],
) -> None:
    one, two = (make_draws(shared_pools[count]) for count in (1, 2))
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a["np_random"], b["np_random"])
        np.testing.assert_array_equal(a["random"], b["random"])


def make_draws(pool: WorkerPool) -> list[dict[str, np.ndarray]]:
    pool.update(Draws())
    return draws(pool, 0)


def test_seed_none_draws_a_seed_and_records_it() -> None:
    first, second = (WorkerPool(Draws(), workers=0) for _ in range(2))
    assert first.seed != second.seed
    again = WorkerPool(Draws(), workers=0, seed=first.seed)
    np.testing.assert_array_equal(draws(first, 0)[0]["batch_rng"], draws(again, 0)[0]["batch_rng"])


def test_batch_rng_outside_a_fetch_is_a_fresh_generator() -> None:
    assert isinstance(batch_rng(), np.random.Generator)


# -- update() --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_update_changes_what_workers_see_from_the_next_epoch(make_pool: Any, mode: str) -> None:
    dataset = Arrays(kind="array")
    pool = make_pool(mode, dataset)
    (batch,) = pool.run_epoch(0, [4])
    assert_same_batch(batch, expected(4, kind="array"))
    dataset.offset = 100  # what on_epoch_end() does
    pool.update(dataset)
    (batch,) = pool.run_epoch(1, [4])
    assert_same_batch(batch, expected(4, offset=100, kind="array"))


# -- failures --------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_killed_worker_raises_worker_error_quickly_and_cleans_up() -> None:
    before_children, before_segments = child_pids(), our_segments()
    pool = fresh_process_pool(Pids(seconds=0.2), workers=1)
    epoch = pool.run_epoch(0, range(200))
    victim = int(next(epoch)[1])
    workers = child_pids() - before_children
    time.sleep(0.1)  # let it take its next batch
    os.kill(victim, signal.SIGKILL)
    started = time.monotonic()
    with pytest.raises(
        WorkerError,
        match=rf"killed by signal SIGKILL \(worker \d, batch \d+, epoch 0; pid {victim}\)",
    ) as caught:
        list(epoch)
    assert time.monotonic() - started < 10
    assert caught.value.pid == victim and caught.value.signal == "SIGKILL"
    assert caught.value.epoch == 0 and caught.value.batch is not None
    assert_released(workers, before_segments)
    pool.close()


@pytest.mark.timeout(60)
def test_a_worker_exiting_names_the_exit_code_and_batch() -> None:
    message = r"exited with code 3 \(worker 0, batch 3, epoch 2;"
    with fresh_process_pool(Exits(at=3)) as pool:
        with pytest.raises(WorkerError, match=message):
            list(pool.run_epoch(2, range(8)))
        assert [int(batch[0]) for batch in pool.run_epoch(3, [0, 1, 2])] == [0, 1, 2]


@pytest.mark.parametrize("mode", ["caller", "threads-2"])
def test_an_exception_in_getitem_keeps_its_type_and_gains_context(
    make_pool: Any, mode: str
) -> None:
    pool = make_pool(mode, Failing(at=5))
    with pytest.raises(AugmentError, match=r"bad sample\n.*batch 5, epoch 1") as caught:
        list(pool.run_epoch(1, range(8)))
    assert isinstance(caught.value.__cause__, AugmentError)


@pytest.mark.timeout(60)
def test_an_exception_in_a_worker_process_comes_back_with_its_traceback() -> None:
    with fresh_process_pool(Failing(at=5), workers=1) as pool:
        message = r"bad sample\n.*worker \d, batch 5, epoch 1 \(pid \d+\).*raise self\.error"
        with pytest.raises(AugmentError, match=f"(?s){message}") as caught:
            list(pool.run_epoch(1, range(8)))
    carrier = caught.value.__cause__
    assert isinstance(carrier, WorkerTraceback) and isinstance(carrier.original, AugmentError)
    assert "workers_helpers.py" in carrier.traceback_text


@pytest.mark.timeout(60)
def test_a_dataset_that_fails_to_load_in_the_worker_is_reported() -> None:
    message = r"(?s)no such checkpoint.*worker 0 .*unpickling the dataset"
    with fresh_process_pool(Unloadable()) as pool, pytest.raises(FileNotFoundError, match=message):
        list(pool.run_epoch(0, range(3)))


@pytest.mark.timeout(60)
def test_a_worker_dying_while_starting_says_so_and_rules_out_the_main_guard() -> None:
    message = r"exited with code 5 \(worker 0, epoch 0, while starting; .*guard is not the cause"
    with fresh_process_pool(DiesOnLoad()) as pool, pytest.raises(WorkerError, match=message):
        list(pool.run_epoch(0, range(3)))


def test_signals_get_a_likely_cause() -> None:
    bus = WorkerError.died(worker=0, pid=1, exitcode=-7, epoch=0, batch=2)
    assert bus.signal == "SIGBUS"
    with pytest.raises(WorkerError, match=r"SIGBUS .* /dev/shm ran full"):
        raise bus


def test_a_worker_exception_of_an_unknown_type_becomes_runtime_error() -> None:
    failure = RemoteFailure("Weird", "boom", "Traceback ...\nWeird: boom\n", None, None)
    with pytest.raises(
        RuntimeError, match=r"^Weird: boom\n  \[raised in worker 3, batch 1"
    ) as caught:
        failure.reraise(where(3, 1, 0))
    assert isinstance(caught.value.__cause__, WorkerTraceback)
    assert caught.value.__cause__.original is None


@pytest.mark.timeout(60)
def test_classes_from_an_interactive_session_and_lambdas_go_by_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Notebook(Arrays):
        pass

    monkeypatch.setattr(Notebook, "__module__", "__main__")
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    dataset = Notebook(kind="array")
    dataset.scale = lambda batch: batch * 2  # type: ignore[attr-defined]

    class Local:
        def __getitem__(self, index: int) -> np.ndarray:
            return dataset.scale(dataset[index])  # type: ignore[attr-defined]

    with fresh_process_pool(Local(), workers=2) as pool:
        batches = list(pool.run_epoch(0, range(4)))
    for index, batch in enumerate(batches):
        assert_same_batch(batch, expected(index, kind="array") * 2)


def test_unpicklable_datasets_are_refused_with_the_fix() -> None:
    locked = Arrays()
    locked.lock = threading.Lock()  # type: ignore[attr-defined]
    with pytest.raises(
        TypeError, match=r"Arrays: pickling it failed: cannot pickle '_thread.*lazily.*threads"
    ):
        WorkerPool(locked, workers=1, use_multiprocessing=True)
    pool = WorkerPool(Arrays(), workers=0, use_multiprocessing=True)  # no processes: fine
    with pytest.raises(TypeError, match="must be indexable"):
        pool.update(object())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"workers": -1}, ValueError, r"`workers` should be an integer >= 0, but got workers=-1"),
        ({"workers": "2"}, TypeError, r"`workers` .* but got str workers='2'"),
        ({"workers": 1, "max_queue_size": 0}, ValueError, r"`max_queue_size` .* >= 1"),
        ({"workers": 1, "seed": -3}, ValueError, r"`seed` .* but got seed=-3"),
    ],
)
def test_bad_arguments_are_named(options: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        WorkerPool(Arrays(), **options)


def test_bad_datasets_and_epochs_are_named() -> None:
    with pytest.raises(TypeError, match=r"`dataset` must be indexable .* but got int"):
        WorkerPool(3, workers=0)  # type: ignore[arg-type]
    pool = WorkerPool(Arrays(), workers=0)
    with pytest.raises(ValueError, match=r"`epoch` .* but got epoch=-1"):
        pool.run_epoch(-1, [0])
    with pytest.raises(ValueError, match=r"`indices` .* min\(indices\)=-2"):
        pool.run_epoch(0, [0, -2])


# -- shutdown ----------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_close_stops_workers_frees_shared_memory_and_is_idempotent() -> None:
    before_children, before_segments = child_pids(), our_segments()
    pool = fresh_process_pool(Arrays(), workers=1)
    epoch = pool.run_epoch(0, range(10))
    next(epoch)
    workers = child_pids() - before_children
    assert our_segments() - before_segments  # the slots exist while it runs
    pool.close()
    pool.close()
    assert_released(workers, before_segments)
    with pytest.raises(RuntimeError, match=r"superseded .* or by close\(\)"):
        next(epoch)
    with pytest.raises(RuntimeError, match="closed WorkerPool"):
        pool.run_epoch(1, [0])


@pytest.mark.timeout(60)
def test_garbage_collection_stops_workers() -> None:
    before_children, before_segments = child_pids(), our_segments()
    pool = fresh_process_pool(Arrays(), workers=1)
    epoch = pool.run_epoch(0, range(10))
    next(epoch)
    workers = child_pids() - before_children
    del pool, epoch
    assert_released(workers, before_segments)


@pytest.mark.timeout(60)
def test_an_abandoned_epoch_stops_workers_and_the_next_epoch_restarts_them() -> None:
    before_children, before_segments = child_pids(), our_segments()
    with fresh_process_pool(Arrays(kind="array")) as pool:
        epoch = pool.run_epoch(0, range(10))
        next(epoch)
        workers = child_pids() - before_children
        del epoch
        assert_released(workers, before_segments)
        batches = list(pool.run_epoch(1, range(10)))
    for index, batch in enumerate(batches):
        assert_same_batch(batch, expected(index, kind="array"))


@pytest.mark.timeout(60)
def test_a_consumer_exception_stops_workers() -> None:
    before_children, before_segments = child_pids(), our_segments()
    with (
        pytest.raises(ArithmeticError, match="the training step failed"),
        fresh_process_pool(Arrays()) as pool,
    ):
        for _batch in pool.run_epoch(0, range(10)):
            workers = child_pids() - before_children
            raise ArithmeticError("the training step failed")
    assert_released(workers, before_segments)


@pytest.mark.timeout(60)
def test_ctrl_c_while_waiting_stops_workers_which_ignore_sigint() -> None:
    before_segments = our_segments()
    pool = fresh_process_pool(Pids(sleep_at=2))
    epoch = pool.run_epoch(0, range(10))
    worker = int(next(epoch)[1])
    os.kill(worker, signal.SIGINT)  # a worker ignores Ctrl-C ...
    assert int(next(epoch)[0]) == 1
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):  # ... the parent, waiting for batch 2, does not
        next(epoch)
    assert time.monotonic() - started < 10
    assert_released({worker}, before_segments)
    pool.close()


# -- shared-memory slots -----------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_batch_bigger_than_the_slots_travels_pickled_with_one_notice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # slots hold batch 0 (4 rows, rounded up to a 4 KiB page); 500 rows do not fit
    dataset = Arrays(kind="dict", rows_at={8: 500, 9: 600})
    with (
        caplog.at_level(logging.WARNING, logger="feeders.workers.pool"),
        fresh_process_pool(dataset) as pool,
    ):
        batches = list(pool.run_epoch(0, range(10)))
    for index, batch in enumerate(batches):
        rows = dataset.rows_at.get(index, 4)
        assert_same_batch(batch, expected(index, rows=rows, kind="dict"))
    notices = [r.getMessage() for r in caplog.records if "does not fit" in r.getMessage()]
    assert len(notices) == 1 and notices[0].startswith("Batch 8 does not fit")


@pytest.mark.timeout(60)
def test_too_little_dev_shm_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shm, "shm_free_bytes", lambda: 2**20)
    dataset = Arrays(kind="array", rows=2**16)  # 768 KiB batches, 4 slots
    before_segments = our_segments()
    message = (
        r"needs 3\.0 MB \(max_queue_size=4 slots of 0\.8 MB.*only 1\.0 MB free\. "
        r"Lower max_queue_size \(max_queue_size=1 would fit\).*use_multiprocessing=False"
    )
    with fresh_process_pool(dataset) as pool, pytest.raises(shm.SharedMemoryError, match=message):
        list(pool.run_epoch(0, range(3)))
    assert our_segments() <= before_segments


# -- with TensorFlow in the parent --------------------------------------------------------------


@pytest.mark.timeout(120)
def test_processes_work_with_tensorflow_imported_and_a_model_built() -> None:
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((8, 4), np.float32), np.zeros((8, 1), np.float32), verbose=0)
    before_children = child_pids()
    with fresh_process_pool(Regression(), workers=2) as pool:
        history = model.fit(
            pool.run_epoch(0, range(6)), steps_per_epoch=6, epochs=1, shuffle=False, verbose=0
        )
        assert np.isfinite(history.history["loss"][0])
        assert sum(pool.stats["batches_per_worker"]) == 6
        workers = child_pids() - before_children
    assert_released(workers, our_segments())


# -- errors ----------------------------------------------------------------------------------


def test_context_keeps_the_type_and_reads_well_for_key_errors() -> None:
    with pytest.raises(KeyError, match=r"^'label'\n  \[raised by .* worker 1, batch 17") as caught:
        raise_with_context(KeyError("label"), where(1, 17, 0))
    assert isinstance(caught.value.__cause__, KeyError)


def test_context_on_an_exception_that_cannot_take_a_message_becomes_runtime_error() -> None:
    class Picky(Exception):
        def __init__(self, code: int, detail: str) -> None:
            super().__init__(code, detail)

    with pytest.raises(
        RuntimeError, match=r"Picky: \(4, 'x'\)\n.*calling thread, batch 2, epoch 0"
    ):
        raise_with_context(Picky(4, "x"), where(None, 2, 0))


def test_worker_error_survives_pickling() -> None:
    error = WorkerError.died(worker=1, pid=42, exitcode=-9, epoch=0, batch=17, started=True)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.pid, copy.signal, copy.batch, str(copy)) == (42, "SIGKILL", 17, str(error))
    with pytest.raises(WorkerError, match=r"SIGKILL \(worker 1, batch 17, epoch 0; pid 42\)"):
        raise copy


def test_thread_epochs_are_superseded_by_the_next_run_epoch() -> None:
    with WorkerPool(Arrays(kind="array"), workers=2, seed=SEED) as pool:
        first = pool.run_epoch(0, range(10))
        next(first)
        second = [batch[0, 0] for batch in pool.run_epoch(1, range(3))]
        assert second == [0.0, 1000.0, 2000.0]
        with pytest.raises(RuntimeError, match="superseded by a later run_epoch"):
            next(first)


@pytest.mark.timeout(60)
def test_a_large_dataset_whose_worker_dies_while_loading_does_not_hang_start() -> None:
    from tests.workers_helpers import BigDiesOnLoad

    with (
        fresh_process_pool(BigDiesOnLoad()) as pool,
        pytest.raises(WorkerError, match=r"exited with code 5"),
    ):
        list(pool.run_epoch(0, range(3)))


# -- order under failure, shipping the dataset, the worker's keras ---------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["threads-2", "processes-2"])
def test_an_error_is_raised_only_after_every_batch_before_it(make_pool: Any, mode: str) -> None:
    pool = make_pool(mode, FailsAfterSlow(slow=1, seconds=1.0))
    delivered: list[int] = []
    with pytest.raises(AugmentError, match=r"batch 2 is corrupt\n.*batch 2, epoch 0"):
        for batch in pool.run_epoch(0, range(6)):
            delivered.append(int(batch[0]))
    assert delivered == [0, 1]  # batch 2 failed first, yet waited for the slow batch 1


@pytest.mark.timeout(60)
def test_a_worker_dying_on_batch_k_is_raised_after_every_batch_before_k() -> None:
    delivered: list[int] = []
    with fresh_process_pool(ExitsAfterSlow(slow=1, seconds=1.0), workers=2) as pool:
        with pytest.raises(WorkerError, match=r"exited with code 3 \(worker \d, batch 2, epoch 0;"):
            for batch in pool.run_epoch(0, range(6)):
                delivered.append(int(batch[0]))
        assert delivered == [0, 1]
        assert [int(batch[0]) for batch in pool.run_epoch(1, [0, 1])] == [0, 1]  # restarted


def identities(pool: WorkerPool, epoch: int) -> np.ndarray:
    return np.stack(list(pool.run_epoch(epoch, range(4))))


@pytest.mark.timeout(60)
def test_an_unchanged_dataset_is_not_sent_again_and_a_changed_one_is() -> None:
    dataset = Identity()
    with fresh_process_pool(dataset, workers=1) as pool:
        first = identities(pool, 0)
        pool.update(dataset)  # what every epoch does
        again = identities(pool, 1)
        assert set(again[:, 1]) == set(first[:, 1])  # the worker kept its object
        assert set(identities(pool, 2)[:, 1]) == set(first[:, 1])  # also without update()
        dataset.x[0] = 5.0  # on_epoch_end changed the large array in place
        pool.update(dataset)
        changed = identities(pool, 3)
        dataset.tag = 7  # ... and then only small state
        pool.update(dataset)
        tagged = identities(pool, 4)
    assert set(changed[:, 1]).isdisjoint(first[:, 1])  # reloaded
    assert changed[0, 2] == 5.0 and changed[0, 3] == 5.0  # the new array, not the worker's writes
    assert set(tagged[:, 4]) == {7.0} and tagged[0, 2] == 5.0
    assert dataset.x[0] == 5.0 and first[0, 2] == 0.0  # the workers' writes stayed theirs


@pytest.mark.timeout(60)
def test_large_arrays_travel_once_through_shared_memory() -> None:
    before = our_segments()
    dataset = Identity(megabytes=8)
    with fresh_process_pool(dataset, workers=2) as pool:
        shipped = our_segments() - before  # the array's segment exists before any worker
        assert len(shipped) == 1
        (name,) = shipped
        assert os.path.getsize(os.path.join(SHM_DIR, name)) >= dataset.x.nbytes
        identities(pool, 0)
    assert our_segments() <= before


@pytest.mark.timeout(60)
def test_workers_unpickle_a_pydataset_without_tensorflow() -> None:
    pytest.importorskip("tensorflow")  # imported in this process, as in training
    with fresh_process_pool(Imports(), workers=2) as pool:
        rows = list(pool.run_epoch(0, range(4)))
    for index, row in enumerate(rows):
        assert row.tolist() == [index, True, False, False, False]


@pytest.mark.timeout(60)
def test_too_little_dev_shm_for_the_datasets_arrays_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shm, "shm_free_bytes", lambda: 2**20)
    before = our_segments()
    message = (
        r"dataset's large arrays .* needs 8\.0 MB, but /dev/shm has only 1\.0 MB free.*threads"
    )
    with pytest.raises(shm.SharedMemoryError, match=message):
        WorkerPool(Identity(megabytes=8), workers=1, use_multiprocessing=True)
    assert our_segments() <= before


@pytest.mark.timeout(120)
def test_a_dataset_using_more_of_keras_gets_the_real_keras_in_workers() -> None:
    with fresh_process_pool(UsesKerasOps(), workers=1) as pool:
        batches = list(pool.run_epoch(0, range(3)))
    for index, batch in enumerate(batches):
        np.testing.assert_array_equal(batch, np.full(2, index, np.float32))
