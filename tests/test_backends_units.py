"""feeders.backends: what each backend's iterator hands over, without a model (any KERAS_BACKEND)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import feeders
from feeders.backends.jax_batches import jax_batches


def _feeder(num_samples: int = 40, batch_size: int = 8) -> feeders.Feeder:
    x = np.arange(num_samples * 2, dtype=np.float32).reshape(num_samples, 2)
    return feeders.adapt(x, np.arange(num_samples), batch_size=batch_size, seed=3)


def _firsts(batches) -> list[float]:  # type: ignore[no-untyped-def]
    return [float(np.asarray(batch[0])[0, 0]) for batch in batches]


def test_torch_batches_share_the_numpy_memory_and_keep_their_structure() -> None:
    torch = pytest.importorskip("torch")
    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    feeder = feeders.adapt(
        {"a": x, "b": x[:, :2]}, [np.arange(6), np.ones(6)], batch_size=4, shuffle=False
    )
    loader = feeder.get_torch_dataloader()
    assert isinstance(loader, torch.utils.data.DataLoader)
    assert loader.num_workers == 0  # feeders' own pool makes the batches
    batches = list(loader)
    assert len(batches) == 2
    xb, yb = batches[0]
    assert isinstance(xb, dict) and isinstance(yb, tuple)
    assert isinstance(xb["a"], torch.Tensor) and xb["a"].device.type == "cpu"
    np.testing.assert_array_equal(xb["a"].numpy(), x[:4])
    assert [b[0]["a"].shape[0] for b in batches] == [4, 2]


def test_torch_tensors_are_zero_copy_except_read_only_arrays() -> None:
    pytest.importorskip("torch")
    from feeders.backends.torch_loader import to_tensors

    writable = np.ones((4, 3), np.float32)
    frozen = np.ones((4, 3), np.float32)
    frozen.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns about read-only arrays; there must be none
        shared, copied, wide = to_tensors((writable, frozen, np.arange(4, dtype=np.uint32)))
    assert np.shares_memory(shared.numpy(), writable)
    assert not np.shares_memory(copied.numpy(), frozen)
    assert str(wide.dtype) == "torch.int64"  # Keras' torch backend refuses uint32


def test_torch_loader_iterates_one_pass_per_iteration() -> None:
    pytest.importorskip("torch")
    feeder = _feeder()
    loader = feeder.get_torch_dataloader()
    first, second = (_firsts(loader), _firsts(loader))
    assert (first, second) == (_firsts(feeder.epoch(0)), _firsts(feeder.epoch(1)))


def test_jax_batches_are_put_on_the_device_one_step_ahead() -> None:
    jax = pytest.importorskip("jax")
    pulled = []

    def numpy_batches():  # type: ignore[no-untyped-def]
        for i in range(3):
            pulled.append(i)
            yield (np.full((2, 2), i, np.float32), None)

    placed = jax_batches(numpy_batches(), ahead=True)
    x, y = next(placed)
    assert pulled == [0, 1]  # batch 1 is on its way while batch 0 is used
    assert isinstance(x, jax.Array) and y is None
    assert [int(b[0][0, 0]) for b in placed] == [1, 2]


def test_jax_batches_stay_numpy_where_nothing_overlaps() -> None:
    pytest.importorskip("jax")
    batches = [(np.zeros((2, 2)), None)]
    assert next(jax_batches(iter(batches), ahead=False)) is batches[0]


def test_with_cuda_batches_arrive_pinned_on_the_gpu_one_step_ahead() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA (CI has none): without it batches stay zero-copy on the CPU")
    feeder = _feeder()
    batches = iter(feeder.get_torch_dataloader())
    x, y = next(batches)[:2]
    assert (x.device.type, y.device.type) == ("cuda", "cuda")
    assert _firsts([(x.cpu(),)]) == _firsts(feeder.epoch(0))[:1]


def test_jax_on_the_cpu_has_nothing_to_put_ahead() -> None:
    jax = pytest.importorskip("jax")
    from feeders.backends.jax_batches import device_put_pays

    assert device_put_pays() is (jax.default_backend() != "cpu")
