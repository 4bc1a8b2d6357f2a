"""torch DataLoader and grain datasets as sources, through model.fit (any KERAS_BACKEND)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import feeders
from feeders.registry import find_source_kind

X = np.arange(80, dtype=np.float32).reshape(40, 2)
Y = np.arange(40) % 3


def _firsts(feeder: feeders.Feeder, n: int, start: int = 0) -> list[list[float]]:
    return [x[:, 0].tolist() for x, _, _ in feeder.epoch(n, start)]


def _fit(feeder: feeders.Feeder, **kwargs: object) -> keras.Model:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(feeder, epochs=2, verbose=0, **kwargs)
    return model


def _loader(torch, *, weights: bool = False, seeded: bool = True):  # type: ignore[no-untyped-def]
    from torch.utils.data import DataLoader, TensorDataset

    parts = [torch.tensor(X), torch.tensor(Y)]
    if weights:
        parts.append(torch.linspace(0.5, 1.5, 40))
    generator = torch.Generator() if seeded else None
    return DataLoader(TensorDataset(*parts), batch_size=8, shuffle=True, generator=generator)


def test_a_torch_dataloader_is_seeded_per_epoch_and_resumable() -> None:
    torch = pytest.importorskip("torch")
    feeder = feeders.adapt(_loader(torch), seed=5)
    assert find_source_kind(_loader(torch)).name == "torch DataLoader"
    assert feeder.num_batches == 5
    again = feeders.adapt(_loader(torch), seed=5)
    assert _firsts(feeder, 0) == _firsts(again, 0)
    assert _firsts(feeder, 1) == _firsts(again, 1) != _firsts(feeder, 0)
    assert _firsts(feeder, 1, 2) == _firsts(again, 1)[2:]
    rows = sorted(v for batch in _firsts(feeder, 3) for v in batch)
    assert rows == X[:, 0].tolist()  # every sample exactly once


def test_a_torch_dataloader_trains_with_weights_split_and_validation() -> None:
    torch = pytest.importorskip("torch")
    feeder = feeders.adapt(_loader(torch, weights=True), seed=0, class_weight={0: 1, 1: 2, 2: 1})
    _, _, weights = next(feeder.epoch(0))
    assert weights.dtype == np.float32 and weights.shape == (8,)
    train, val = feeder.split(1)
    assert (train.num_batches, val.num_batches) == (4, 1)
    _fit(train, validation_data=val)
    _fit(feeders.adapt(_loader(torch, seeded=False)))  # the global RNG's order, as in PyTorch


def test_a_torch_dataloader_refuses_arguments_its_batches_hold() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(
        TypeError, match=r"`sample_weight` does not apply to 'torch DataLoader' sources"
    ):
        feeders.adapt(_loader(torch), sample_weight=np.ones(40))


def _grain_map():  # type: ignore[no-untyped-def]
    grain = pytest.importorskip("grain")
    return grain.MapDataset.source(np.arange(40)).map(lambda i: (X[i], Y[i])).batch(8)


def test_grain_map_datasets_have_an_exact_length_and_split() -> None:
    dataset = _grain_map()
    feeder = feeders.adapt(dataset, class_weight={0: 1.0, 1: 2.0, 2: 0.5})
    assert find_source_kind(dataset).name == "grain"
    assert feeder.num_batches == 5
    assert _firsts(feeder, 0) == [X[i : i + 8, 0].tolist() for i in range(0, 40, 8)]
    train, val = feeder.split(2)
    _fit(train, validation_data=val)
    assert _firsts(feeder, 1, 3) == _firsts(feeder, 1)[3:]


def test_grain_iter_datasets_and_dataloaders_train() -> None:
    grain = pytest.importorskip("grain")
    iterable = _grain_map().to_iter_dataset()
    assert feeders.adapt(iterable).num_batches is None  # as Keras: unknown until a pass ends
    _fit(feeders.adapt(iterable, num_batches=5))
    loader = grain.DataLoader(
        data_source=[(X[i], Y[i]) for i in range(40)],
        sampler=grain.samplers.IndexSampler(40, shuffle=True, seed=0, num_epochs=1),
        operations=[grain.transforms.Batch(8)],
        worker_count=0,
    )
    feeder = feeders.adapt(loader, num_batches=5)
    assert sorted(v for batch in _firsts(feeder, 0) for v in batch) == X[:, 0].tolist()
    _fit(feeder)
