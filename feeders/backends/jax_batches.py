"""The JAX backend's batches: NumPy, put on the device one step ahead.

Why one step ahead: ``jax.device_put`` returns at once and copies in the
background, so putting batch ``i + 1`` while the model runs on batch ``i``
overlaps the host-to-device copy with the step. On the CPU there is nothing to
overlap (the "device" is host memory), and under a ``keras.distribution`` Keras
lays each batch out across its devices itself, so NumPy batches go through
unchanged in both cases. Keras 3.15's own JAX loop also looks one batch ahead
on accelerators; ``jax.device_put`` of an array already on its device is free,
so the two do not copy twice (the look-ahead is then two batches).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from feeders.rescaling import jax_rescaled, numpy_rescaled


def jax_batches(
    batches: Iterator[Any], *, ahead: bool | None = None, rescale: float | None = None
) -> Iterator[Any]:
    """``batches`` with every leaf on the default JAX device, one batch ahead of the consumer.

    Args:
        batches: NumPy batches (tuples, lists and dicts of arrays; ``None`` stays ``None``).
        ahead: put batches on the device one step ahead; ``None`` (the default)
            does so only when :func:`device_put_pays` says it pays.
        rescale: convert uint8 leaves of ``x`` to float32 ``x * rescale``: on the
            device after the uint8 copy when put ahead, else with NumPy
            (:mod:`feeders.rescaling`); ``None``: as they are.

    Returns:
        The same batches, in the same order: ``jax.Array`` leaves when put ahead,
        else the NumPy batches themselves.
    """
    if ahead is None:
        ahead = device_put_pays()
    if not ahead:
        yield from batches if rescale is None else numpy_rescaled(batches, rescale)
        return
    import jax

    pending: Any = None
    have = False
    for batch in batches:
        placed = jax.tree_util.tree_map(jax.device_put, batch)  # starts the copy, returns at once
        if rescale is not None:
            placed = jax_rescaled(placed, rescale)  # queued on the device after the copy
        if have:
            yield pending
        pending, have = placed, True
    if have:
        yield pending


def device_put_pays() -> bool:
    """Whether putting batches on the device ahead of time overlaps anything.

    Returns:
        ``True`` when JAX's default backend is an accelerator and no
        ``keras.distribution`` is set (which lays batches out itself).
    """
    import jax
    import keras

    return jax.default_backend() != "cpu" and keras.distribution.distribution() is None
