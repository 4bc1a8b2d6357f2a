"""The public API, pinned: `feeders.__all__` and the signature of every public callable.

A change here is a change users see: update the pin in the same commit, on
purpose. `python -m tests.test_public_api` prints the current signatures in
this file's format.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import pytest

import feeders

ALL = [
    "AdaptOptions",
    "ArraySpec",
    "BatchSpec",
    "Feeder",
    "ImageFileSequence",
    "Source",
    "SourceKind",
    "WorkerError",
    "adapt",
    "batch_rng",
    "callbacks",
    "datasets",
    "distributed",
    "harness",
    "register_source",
    "unregister_source",
]
PUBLIC = [
    "feeders.adapt",
    "feeders.register_source",
    "feeders.unregister_source",
    "feeders.batch_rng",
    "feeders.Feeder",
    "feeders.Feeder.split",
    "feeders.Feeder.bind",
    "feeders.Feeder.as_dataset",
    "feeders.Feeder.seek",
    "feeders.Feeder.epoch",
    "feeders.Feeder.pipeline_stats",
    "feeders.ImageFileSequence",
    "feeders.SourceKind",
    "feeders.callbacks.FeederCheckpoint",
    "feeders.callbacks.fit_resumable",
    "feeders.callbacks.load_state",
    "feeders.callbacks.DataWaitMonitor",
    "feeders.distributed.distribute",
    "feeders.datasets.load_mnist",
    "feeders.harness.run_mnist",
    "feeders.bench.profile",
]
SIGNATURES = {
    "feeders.adapt": "(source: 'Any', y: 'Tree | None' = None, *, sample_weight: 'Tree | None' = None, class_weight: 'Mapping[Any, Any] | Sequence[Any] | None' = None, batch_size: 'int | None' = None, shuffle: 'Shuffle | None' = None, seed: 'int | None' = None, steps_per_epoch: 'int | None' = None, model: 'Any' = None, shard: 'tuple[int, int] | str | None' = None, global_batch_size: 'int | None' = None, **options: 'Unpack[AdaptOptions]') -> 'Feeder'",
    "feeders.register_source": "(name: 'str', predicate: 'Callable[[Any], bool]', factory: 'Callable[..., Any] | str', *, accepts: 'frozenset[str] | None' = None, default_shuffle: 'bool' = True) -> 'SourceKind'",
    "feeders.unregister_source": "(kind: 'SourceKind') -> 'None'",
    "feeders.batch_rng": "() -> 'np.random.Generator'",
    "feeders.Feeder": "(source: 'Source', *, class_weight: 'Mapping[Any, Any] | Sequence[Any] | None' = None, steps_per_epoch: 'int | None' = None, kind: 'str' = 'custom') -> 'None'",
    "feeders.Feeder.split": "(self, at: 'int | float') -> 'tuple[Feeder, Feeder]'",
    "feeders.Feeder.bind": "(self, model: 'Any') -> 'Feeder'",
    "feeders.Feeder.as_dataset": "(self) -> 'Any'",
    "feeders.Feeder.seek": "(self, epoch: 'int', batch: 'int' = 0) -> 'None'",
    "feeders.Feeder.epoch": "(self, n: 'int', start: 'int' = 0, *, shuffle: 'bool' = True) -> 'Iterator[Batch]'",
    "feeders.Feeder.pipeline_stats": "(self) -> 'dict[str, Any]'",
    "feeders.ImageFileSequence": "(files: 'Sequence[str | os.PathLike[str]]', labels: 'Any' = None, *, batch_size: 'int' = 32, image_size: 'tuple[int, int]' = (200, 200), shuffle: 'bool' = False, seed: 'int | None' = None, decoder: 'str' = 'auto', dtype: 'str' = 'float32', rescale: 'float | None' = None, on_error: \"Literal['raise', 'skip']\" = 'raise', max_pixels: 'int' = 89478485, workers: 'int' = 1, use_multiprocessing: 'bool' = False, max_queue_size: 'int' = 10) -> 'None'",
    "feeders.SourceKind": "(name: 'str', predicate: 'Callable[[Any], bool]', factory: 'Callable[..., Any] | str', accepts: 'frozenset[str] | None' = None, default_shuffle: 'bool' = True, batchwise_shuffle: 'bool' = False, hint: 'str' = '') -> None",
    "feeders.callbacks.FeederCheckpoint": "(directory: 'str | os.PathLike[str]', feeder: 'Feeder', save_freq: 'int | str' = 'epoch') -> 'None'",
    "feeders.callbacks.fit_resumable": "(build_model: 'Any', feeder: 'Feeder', directory: 'str | os.PathLike[str]', *, epochs: 'int', save_freq: 'int | str' = 'epoch', callbacks: 'list[keras.callbacks.Callback] | None' = None, **fit_kwargs: 'Any') -> 'keras.Model'",
    "feeders.callbacks.load_state": "(directory: 'str | os.PathLike[str]', feeder: 'Feeder') -> 'tuple[int, int] | None'",
    "feeders.callbacks.DataWaitMonitor": "(feeder: 'Feeder', *, input_bound_at: 'float' = 0.5) -> 'None'",
    "feeders.distributed.distribute": "(feeder: 'Any', service: 'str', processing_mode: 'str' = 'distributed_epoch', job_name: 'str | None' = None, *, timeout: 'float' = 60.0, probe_timeout: 'float' = 5.0, compression: 'str | None' = 'AUTO') -> 'DistributedFeeder'",
    "feeders.datasets.load_mnist": "(path: 'str | os.PathLike[str] | None' = None) -> 'MnistSplits'",
    "feeders.harness.run_mnist": "(path: 'str | None' = None, *, epochs: 'int' = 2, batch_size: 'int' = 64, seed: 'int' = 0, verbose: 'int | str' = 0, make_feeder: 'MakeFeeder' = <function adapt>, callbacks: 'list[Any] | None' = None) -> 'MnistResult'",
    "feeders.bench.profile": "(source: 'Any', y: 'Any' = None, *, model: 'Any' = None, budget_s: 'float' = 30.0, worker_counts: 'list[int] | None' = None, fit_steps: 'int' = 20, **adapt_options: 'Any') -> 'Profile'",
}


def find(path: str) -> Any:
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attr in parts[split:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


def signature(path: str) -> str:
    text = str(inspect.signature(find(path)))
    return re.sub(r"<function (\w+) at 0x[0-9a-f]+>", r"<function \1>", text)


def test_all_is_pinned() -> None:
    assert sorted(feeders.__all__) == ALL
    assert all(getattr(feeders, name) is not None for name in feeders.__all__)


@pytest.mark.parametrize("path", PUBLIC)
def test_public_signature_is_pinned(path: str) -> None:
    assert signature(path) == SIGNATURES[path]


def test_every_pinned_name_is_checked() -> None:
    assert sorted(SIGNATURES) == sorted(PUBLIC)


if __name__ == "__main__":
    for path in PUBLIC:
        print(f"    {path!r}: {signature(path)!r},")
