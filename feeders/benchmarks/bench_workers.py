"""Worker processes: start-up, memory per worker, per-epoch cost of a 300 MB dataset; vs Keras.

Rows (JSON lines on stdout), each side by side with Keras' own pool
(``PyDataset(workers=2, use_multiprocessing=True)`` through its adapter), TensorFlow
imported in this process, interleaved repeats:

  - ``start-up``: seconds from ``feeders.adapt(...)`` (Keras: ``on_epoch_begin``) to
    the first batch of a ``keras.utils.PyDataset`` subclass, workers=2;
  - ``RSS per worker``: MB resident per worker process after the first batch (Keras
    forks, so its RSS counts pages shared with the parent; PSS is given too);
  - ``epoch, 300 MB unchanged`` / ``changed``: seconds per epoch of a PyDataset
    holding a 300 MB array, with 10 tiny batches, minus the same epoch computed
    in this process (the floor, which includes ``on_epoch_end``), so the row is
    the pool's per-epoch overhead; ``changed`` negates the array in ``on_epoch_end``;
  - ``adapt, 300 MB`` vs one ``pickle.dumps`` of the dataset;
  - ``worker RSS / dataset``: each worker's RSS over the dataset size, after two
    more epochs whose batches each read a tenth of the array (so all of it is read).

Run: ``python -m feeders.benchmarks.bench_workers [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from feeders.benchmarks._timing import Measurement, emit, environment, interleaved

SUITE = "workers"
DATASET_MB = 300
BATCHES = 10

try:  # the datasets below subclass Keras' PyDataset, as users' do
    import keras

    _Base: Any = keras.utils.PyDataset
except ImportError:  # pragma: no cover - keras is a core dependency
    _Base = object


class Squares(_Base):  # type: ignore[misc]
    """A small PyDataset: what start-up and memory per worker are measured with."""

    def __len__(self) -> int:
        return BATCHES

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        x = np.random.default_rng(index).random((32, 8), dtype=np.float32)
        return x, (x**2).sum(axis=1, keepdims=True)


class Big(_Base):  # type: ignore[misc]
    """Holds a 300 MB array; batch ``i`` reads 8 rows of it, or (``touch``) its ``i``-th tenth."""

    def __init__(self, changing: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.x = np.ones(DATASET_MB * 2**20 // 4, np.float32)
        self.changing = changing
        self.touch = False

    def __len__(self) -> int:
        return BATCHES

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        part = self.x.reshape(BATCHES, -1)[index]
        value = part.sum() if self.touch else part[:32].sum()
        return np.full((8, 4), value, np.float32), np.zeros((8, 1), np.float32)

    def on_epoch_end(self) -> None:
        if self.changing:
            np.negative(self.x, out=self.x)


def _status_mb(pid: int, field: str) -> float:
    path = f"/proc/{pid}/smaps_rollup" if field == "Pss" else f"/proc/{pid}/status"
    try:
        with open(path) as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _children(marker: bytes = b"") -> set[int]:
    """This process's children whose command line contains ``marker``."""
    found = set()
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rpartition(")")[2].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and marker in command:
            found.add(int(entry))
    return found


def worker_pids() -> set[int]:
    return _children(b"feeders.workers._worker")


def _row(name: str, unit: str, values: list[float], config: dict[str, Any]) -> dict[str, Any]:
    values = [value for value in values if value == value] or [float("nan")]  # zombies: no RSS
    return {
        "suite": SUITE,
        "name": name,
        "value": statistics.median(values),
        "unit": unit,
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "repeats": len(values),
        "config": config,
        **environment(),
    }


class KerasEpochs:
    """Keras' own adapter and pool over ``dataset``; one call = one epoch (it forks per epoch)."""

    def __init__(self, dataset: Any) -> None:
        from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

        self.adapter = PyDatasetAdapter(dataset, shuffle=False)
        self.rss: list[float] = []
        self.pss: list[float] = []

    def first_batch(self) -> None:
        before = _children()
        self.adapter.on_epoch_begin()
        batches = iter(self.adapter.get_numpy_iterator())
        next(batches)
        self._sample(before)
        for _ in batches:
            pass
        self.adapter.on_epoch_end()

    def epoch(self) -> None:
        before = _children()
        self.adapter.on_epoch_begin()
        for position, _ in enumerate(self.adapter.get_numpy_iterator()):
            if position == BATCHES - 1:
                self._sample(before)
        self.adapter.on_epoch_end()

    def _sample(self, before: set[int]) -> None:
        workers = _children() - before
        self.rss += [_status_mb(pid, "VmRSS") for pid in workers]
        self.pss += [_status_mb(pid, "Pss") for pid in workers]


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 5)

    import tensorflow as tf  # noqa: F401  - the parent as in training: TensorFlow loaded

    import feeders
    from feeders.benchmarks.bench_workers import (
        Big as ImportedBig,  # by reference, as users' modules
    )
    from feeders.benchmarks.bench_workers import Squares as ImportedSquares

    config = {"workers": 2, "use_multiprocessing": True, "backend": keras.backend.backend()}
    rows: list[dict[str, Any]] = []

    # -- start-up and memory per worker ---------------------------------------------------
    feeders_rss: list[float] = []
    keras_runs: list[KerasEpochs] = []

    def feeders_start() -> None:
        feeder = feeders.adapt(
            ImportedSquares(), workers=2, use_multiprocessing=True, shuffle=False
        )
        next(iter(feeder.source.epoch(0)))
        feeders_rss.extend(_status_mb(pid, "VmRSS") for pid in worker_pids())
        feeder.close()

    def keras_start() -> None:
        keras_runs.append(KerasEpochs(ImportedSquares(workers=2, use_multiprocessing=True)))
        keras_runs[-1].first_batch()

    seconds = interleaved({"feeders": feeders_start, "keras": keras_start}, repeats, warmup=0)
    keras_rss = [mb for run in keras_runs for mb in run.rss]
    keras_pss = [mb for run in keras_runs for mb in run.pss]
    rows += [
        _row("start-up to first batch, feeders", "s", seconds["feeders"], config),
        _row("start-up to first batch, keras", "s", seconds["keras"], config),
        _row("RSS per worker, feeders", "MB", feeders_rss, config),
        _row("RSS per worker, keras", "MB", keras_rss, config),
        _row("PSS per worker, keras", "MB", keras_pss, config),
    ]
    emit(rows)

    # -- a 300 MB dataset ------------------------------------------------------------------
    for changing in (False, True):
        label = "changed" if changing else "unchanged"
        big_config = {**config, "dataset_mb": DATASET_MB, "batches": BATCHES}
        dataset = ImportedBig(changing, workers=2, use_multiprocessing=True)
        pickling = Measurement("pickle", "s", 1)
        adapt = Measurement("adapt", "s", 1)
        for _ in range(1 if args.quick else 2):
            started = time.perf_counter()
            pickle.dumps(dataset, protocol=5)
            pickling.seconds.append(time.perf_counter() - started)
            started = time.perf_counter()
            feeder = feeders.adapt(dataset, workers=2, use_multiprocessing=True, shuffle=False)
            adapt.seconds.append(time.perf_counter() - started)
            feeder.close()
        feeder = feeders.adapt(dataset, workers=2, use_multiprocessing=True, shuffle=False)
        keras_epochs = KerasEpochs(dataset)
        epochs = iter(range(10**6))

        def through_feeders() -> None:
            for _ in feeder.source.epoch(next(epochs)):  # noqa: B023 - called in this loop
                pass

        def in_process() -> None:
            for index in range(len(dataset)):  # noqa: B023
                dataset[index]  # noqa: B023
            dataset.on_epoch_end()  # noqa: B023

        timed = interleaved(
            {"feeders": through_feeders, "keras": keras_epochs.epoch, "floor": in_process},
            repeats,
        )
        floor = statistics.median(timed["floor"])
        dataset.touch, keras_epochs.rss = True, []  # now every batch reads its tenth
        for _ in range(2):
            through_feeders()
            keras_epochs.epoch()
        worker_rss = [_status_mb(pid, "VmRSS") for pid in worker_pids()]
        feeder.close()
        big_rows = [
            _row(
                f"epoch overhead, 300 MB {label}, feeders",
                "s",
                [s - floor for s in timed["feeders"]],
                big_config,
            ),
            _row(
                f"epoch overhead, 300 MB {label}, keras",
                "s",
                [s - floor for s in timed["keras"]],
                big_config,
            ),
            _row(f"epoch in process, 300 MB {label} (floor)", "s", timed["floor"], big_config),
            _row(
                f"adapt / one pickling, 300 MB {label}",
                "ratio",
                [statistics.median(adapt.seconds) / statistics.median(pickling.seconds)],
                {**big_config, "adapt_s": adapt.seconds, "pickle_s": pickling.seconds},
            ),
            _row(
                f"worker RSS / dataset, 300 MB {label}, feeders",
                "ratio",
                [mb / DATASET_MB for mb in worker_rss],
                big_config,
            ),
            _row(
                f"worker RSS / dataset, 300 MB {label}, keras",
                "ratio",
                [mb / DATASET_MB for mb in keras_epochs.rss],
                big_config,
            ),
        ]
        rows += emit(big_rows)
    return rows


if __name__ == "__main__":
    main()
