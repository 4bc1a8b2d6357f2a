"""Sharding without collectives: two simulated processes read one global order (feeders/sharding.py).

Every case checks the same guarantee (NOTE [ the shard rule ]): across the two
shards every sample is trained exactly once, the only rows both see are masked
(``sample_weight`` 0) padding, and both run the same steps with the same shapes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import feeders
from feeders.callbacks import FeederCheckpoint, load_state
from feeders.sharding import Shard, resolve_shard, sample_plan
from tests.conformance.cases import conformance_arrays
from tests.id_sequence import IdSequence

N, BATCH = 1001, 32


def _ids_of(feeder: feeders.Feeder, epoch: int = 0) -> tuple[list[int], list[int], list[tuple]]:
    """(trained ids, masked ids, batch shapes) of one epoch."""
    ids, masked, shapes = [], [], []
    for x, _y, weight in feeder.epoch(epoch):
        rows = np.asarray(x)[:, 0].astype(int)
        ids += rows[weight > 0].tolist()
        masked += rows[weight == 0].tolist()
        shapes.append(np.shape(x))
    return ids, masked, shapes


def _check_exactly_once(per_process: list[tuple[list[int], list[int], list[tuple]]]) -> None:
    (ids0, _, shapes0), (ids1, _, shapes1) = per_process
    assert sorted(ids0 + ids1) == list(range(N))  # every sample once: union, no duplicate
    assert len(shapes0) == len(shapes1)  # the same number of steps
    assert set(shapes0) == set(shapes1) and len(set(shapes0)) == 1  # one batch shape everywhere


def _tf_dataset(x: np.ndarray, y: np.ndarray) -> Any:
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y))


def _generator_factory(x: np.ndarray, y: np.ndarray) -> Callable[[Shard], Iterator[Any]]:
    """Global batches shard.index::shard.count; the short process pads with a masked batch."""

    def batches(shard: Shard) -> Iterator[Any]:
        starts = list(range(0, N, BATCH))
        steps = -(-len(starts) // shard.count)
        for step in range(steps):
            g = step * shard.count + shard.index
            lo = starts[g] if g < len(starts) else 0
            rows = np.arange(lo, lo + BATCH)
            weight = ((rows < N) & (g < len(starts))).astype("float32")
            yield x[rows % N], y[rows % N], weight

    return batches


MAKERS: dict[str, Callable[[np.ndarray, np.ndarray, Shard], feeders.Feeder]] = {
    "arrays": lambda x, y, s: feeders.adapt(x, y, batch_size=BATCH, seed=3, shard=s),
    "arrays_global_batch": lambda x, y, s: feeders.adapt(
        x, y, global_batch_size=2 * BATCH, seed=3, shard=s
    ),
    "arrays_then_shard": lambda x, y, s: feeders.adapt(x, y, batch_size=BATCH, seed=3).shard(
        s.index, s.count
    ),
    "sequence": lambda x, y, s: feeders.adapt(IdSequence(x, y, BATCH), seed=3, shard=s),
    "sequence_threads": lambda x, y, s: feeders.adapt(
        IdSequence(x, y, BATCH), seed=3, workers=2, shard=s
    ),
    "tf_data_samples": lambda x, y, s: feeders.adapt(
        _tf_dataset(x, y), batch_size=BATCH, shuffle_buffer=64, seed=3, shard=s
    ),
    "tf_data_batches": lambda x, y, s: feeders.adapt(
        _tf_dataset(x, y).batch(BATCH), shuffle=False, shard=s
    ),
    "generator_factory": lambda x, y, s: feeders.adapt(
        _generator_factory(x, y), shuffle=False, shard=s
    ),
}


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_two_shards_train_every_sample_once(kind: str) -> None:
    x, y = conformance_arrays(N)
    shards = [MAKERS[kind](x, y, Shard(i, 2)) for i in range(2)]
    try:
        for epoch in (0, 1):
            _check_exactly_once([_ids_of(f, epoch) for f in shards])
    finally:
        for f in shards:
            f.close()


def test_sample_plan_pads_only_the_last_round_with_masked_row_zero() -> None:
    order = np.random.default_rng(0).permutation(N)
    plans = [sample_plan(order, Shard(i, 3), 10) for i in range(3)]
    steps = -(-N // 30)
    assert all(rows.shape == mask.shape == (steps, 10) for rows, mask in plans)
    trained = np.concatenate([rows[mask] for rows, mask in plans])
    assert sorted(trained.tolist()) == list(range(N))
    padding = np.concatenate([rows[~mask] for rows, mask in plans])
    assert len(padding) == steps * 30 - N and set(padding.tolist()) == {0}
    # Step s of process i holds global positions [s*30 + i*10, s*30 + i*10 + 10).
    np.testing.assert_array_equal(plans[1][0][0], order[10:20])


def test_sharded_sequence_pads_the_short_batch_and_the_last_round() -> None:
    x, y = conformance_arrays(N)  # 32 batches, the last of 9 rows: process 1 gets it
    shards = [feeders.adapt(IdSequence(x, y, BATCH), shuffle=False, shard=(i, 3)) for i in range(3)]
    batches = [list(f.epoch(0)) for f in shards]
    assert [len(b) for b in batches] == [11, 11, 11]
    last = [b[-1] for b in batches]
    # Global batches 30 and 31 (9 rows, padded to 32) end processes 0 and 1; process 2 gets a
    # masked batch (batch 0, weight 0).
    assert [int(w.sum()) for _x, _y, w in last] == [32, 9, 0]
    assert {np.shape(b[0]) for b in last} == {(BATCH, 3)}


@pytest.mark.parametrize("kind", ["arrays", "tf_data_samples"])
def test_fit_on_two_shards_trains_every_sample_once(kind: str) -> None:
    """Through model.fit (TensorFlow backend): each 'process' trains its shard."""
    from tests.keras_recorder import Recorder

    x, y = conformance_arrays(N)
    seen = []
    for i in range(2):
        recorder = Recorder()
        feeder = MAKERS[kind](x, y, Shard(i, 2))
        recorder.model.fit(feeder, epochs=1, verbose=0)
        seen.append(recorder.seen)
    assert len(seen[0]) == len(seen[1]) == 16  # 1001 / (2 * 32) rounded up
    rows = [sorted(i for batch in s for i in batch) for s in seen]
    both = set(rows[0]) & set(rows[1])
    assert both <= {0}  # only the masked padding (row 0) is in both
    padding = 16 * 2 * BATCH - N
    assert sorted(rows[0] + rows[1]) == sorted([*range(N), *[0] * padding])


def test_resume_needs_the_same_process_count(tmp_path: Path) -> None:
    x, y = conformance_arrays(N)
    feeder = feeders.adapt(x, y, batch_size=BATCH, seed=1, shard=(1, 2))
    assert feeder.fingerprint()["process_count"] == 2
    checkpoint = FeederCheckpoint(tmp_path, feeder)
    checkpoint._trained_in_pass = 5
    state = {"version": 1, "epoch": 0, "batch": 5, **feeder.fingerprint()}
    (tmp_path / "feeder_state.json").write_text(json.dumps(state))
    assert load_state(tmp_path, feeder) == (0, 5)
    again = feeders.adapt(x, y, batch_size=BATCH, seed=1, shard=(1, 2))
    again.seek(0, 5)
    assert [b[0][:, 0].tolist() for b in again] == [
        b[0][:, 0].tolist() for b in list(feeder.epoch(0))[5:]
    ]
    four = feeders.adapt(x, y, batch_size=BATCH, seed=1, shard=(1, 4))
    with pytest.raises(ValueError, match=r"written by 2 data-parallel processes, but .* for 4"):
        load_state(tmp_path, four)
    unsharded = feeders.adapt(x, y, batch_size=BATCH, seed=1)
    with pytest.raises(ValueError, match=r"written by 2 .* sharded for 1"):
        load_state(tmp_path, unsharded)


def test_resolve_shard_auto_reads_tf_config(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})
    )
    assert resolve_shard("auto") == Shard(2, 3)
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "ps", "index": 0}})
    )
    with pytest.raises(ValueError, match="task type 'ps'"):
        resolve_shard("auto")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG but it is not valid"):
        resolve_shard("auto")
    monkeypatch.delenv("TF_CONFIG")
    assert resolve_shard("auto") == Shard(0, 1)
    assert resolve_shard((1, 4)) == Shard(1, 4)


class _Endless:
    num_batches = None

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((2, 3)), np.zeros(2)


def _unknown_size(x: np.ndarray, y: np.ndarray) -> Any:
    return _tf_dataset(x, y).filter(lambda *_: True)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda x, y: feeders.adapt(x, y, shard=(2, 2), seed=0),
            ValueError,
            r"0 <= index < count.*\(2, 2\)",
        ),
        (lambda x, y: feeders.adapt(x, y, shard="all", seed=0), ValueError, "shard='all'"),
        (lambda x, y: feeders.adapt(x, y, shard=(0, 1.5), seed=0), TypeError, "count=float"),
        (
            lambda x, y: feeders.adapt(x, y, shard=(0, 3), global_batch_size=64, seed=0),
            ValueError,
            "multiple of the 3 processes.*global_batch_size=63",
        ),
        (
            lambda x, y: feeders.adapt(x, y, batch_size=8, global_batch_size=64),
            ValueError,
            "not both",
        ),
        (
            lambda x, y: feeders.adapt(x, y, shard=(0, 2), drop_remainder=True, seed=0),
            ValueError,
            "drop_remainder",
        ),
        (lambda x, y: feeders.adapt(x, shard=(0, 2), seed=0), ValueError, "needs targets"),
        (
            lambda x, y: feeders.adapt(x, y, shard=(0, 2)),
            ValueError,
            "`seed`.*same on every process",
        ),
        (
            lambda x, y: feeders.adapt(x, y, shard=(0, 2), seed=0).shard(1, 2),
            ValueError,
            "already sharded",
        ),
        (
            lambda x, y: feeders.adapt(lambda: iter([(x, y)]), shard=(0, 2), shuffle=False),
            TypeError,
            "factory that takes the shard",
        ),
        (
            lambda x, y: feeders.adapt(_Endless(), shuffle=False, shard=(0, 2)),
            ValueError,
            "sharded Sequence needs a finite length",
        ),
        (
            lambda x, y: feeders.adapt(_unknown_size(x, y), batch_size=4, shard=(0, 2), seed=0),
            ValueError,
            "cardinality is unknown.*cardinality=",
        ),
    ],
)
def test_shard_errors(call: Callable[..., Any], error: type[Exception], match: str) -> None:
    x, y = conformance_arrays(N)
    with pytest.raises(error, match=match):
        call(x, y)


def test_image_file_sequence_shards_by_batch_with_its_own_pool(tmp_path: Path) -> None:
    from feeders.images import ImageFileSequence
    from feeders.images.samples import write_photos

    files = write_photos(tmp_path, 10, sizes=(16, 24))
    shards = [
        feeders.adapt(
            ImageFileSequence(
                files, np.arange(10), batch_size=4, image_size=(8, 8), shuffle=True, seed=2
            ),
            seed=2,
            shard=(i, 2),
        )
        for i in range(2)
    ]
    assert shards[0].source.pool is not shards[1].source.pool
    for epoch in (0, 1):
        labels, shapes = [], []
        for f in shards:
            for x, y, weight in f.epoch(epoch):
                labels += y[weight > 0].tolist()
                shapes.append(x.shape)
        assert sorted(labels) == list(range(10))  # 3 batches (4, 4, 2) over 2 processes
        assert shapes == [(4, 8, 8, 3)] * 4  # 2 steps each; the short batch padded, one masked


def test_resolve_shard_auto_reads_torch_distributed(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    distributed = types.SimpleNamespace(
        is_available=lambda: True,
        is_initialized=lambda: True,
        get_rank=lambda: 3,
        get_world_size=lambda: 4,
    )
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(distributed=distributed))
    monkeypatch.delitem(sys.modules, "jax", raising=False)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert resolve_shard("auto") == Shard(3, 4)


def _torch_loader(x: np.ndarray, y: np.ndarray, shard: Shard) -> feeders.Feeder:
    torch = pytest.importorskip("torch")
    data = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    loader = torch.utils.data.DataLoader(
        data, batch_size=BATCH, shuffle=True, generator=torch.Generator()
    )
    return feeders.adapt(loader, seed=3, shard=shard)  # one seed: one global order per epoch


def _grain_batches(x: np.ndarray, y: np.ndarray, shard: Shard) -> feeders.Feeder:
    grain = pytest.importorskip("grain")
    dataset = grain.MapDataset.source(list(zip(x, y, strict=True))).batch(BATCH)
    return feeders.adapt(dataset, shuffle=False, shard=shard)


@pytest.mark.parametrize("make", [_torch_loader, _grain_batches], ids=["torch", "grain"])
def test_torch_and_grain_sources_shard_by_striding_their_batches(make: Callable) -> None:
    """Every process reads the whole seeded pass and keeps global batches index::count."""
    x, y = conformance_arrays(N)
    shards = [make(x, y, Shard(i, 2)) for i in range(2)]
    for epoch in (0, 1):
        _check_exactly_once([_ids_of(f, epoch) for f in shards])
    steps = -(-N // BATCH)  # 32 global batches: 16 each, the last padded to BATCH rows
    assert shards[0].num_batches == shards[1].num_batches == -(-steps // 2)
