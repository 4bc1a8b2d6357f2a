"""uint8 ``x`` to float32 ``x * rescale`` where the model runs, for a :class:`~feeders.capabilities.Rescaled` source.

Why its own module: the batches stay uint8 through the worker pool (4x fewer bytes to
copy) and convert only at the consumer, which is a different place per backend. This is
the one list of those places, each a single cast and multiply:

- TensorFlow (``Feeder.as_dataset()``, what ``fit`` takes): a ``map`` in the ``tf.data``
  graph after the batches leave Python (:func:`tf_rescaled`);
- JAX: a ``jax.numpy`` cast on the device, after the uint8 batch was put there
  (:func:`jax_rescaled`, called by :mod:`feeders.backends.jax_batches`);
- PyTorch: ``tensor.to(float32).mul_()`` after the uint8 tensor reached its device
  (:func:`torch_rescaled`, called by :mod:`feeders.backends.torch_loader`);
- NumPy (``get_numpy_iterator``): in the calling process, after the pool (:func:`numpy_rescaled`).

Only uint8 leaves of ``x`` convert; ``y`` and ``sample_weight`` pass through. Keras'
build peek gets float32 zeros too, since it goes through the same conversion.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from feeders.capabilities import Rescaled
from feeders.structure import map_tree

__all__ = ["jax_rescaled", "numpy_rescaled", "rescale_of", "tf_rescaled", "torch_rescaled"]


def rescale_of(source: object) -> float | None:
    """The source's factor if it is :class:`~feeders.capabilities.Rescaled`, else ``None``."""
    return source.rescale if isinstance(source, Rescaled) else None


def _with_x(batch: tuple[Any, ...], convert: Any) -> tuple[Any, ...]:
    return (convert(batch[0]), *batch[1:])


def numpy_rescaled(batches: Iterator[tuple[Any, ...]], scale: float) -> Iterator[tuple[Any, ...]]:
    """``(x, ...)`` batches with uint8 leaves of ``x`` as float32 ``x * scale`` (NumPy)."""
    factor = np.float32(scale)

    def leaf(array: Any) -> Any:
        if getattr(array, "dtype", None) != np.uint8:
            return array
        return np.multiply(array, factor, dtype=np.float32)

    for batch in batches:
        yield _with_x(batch, lambda x: map_tree(leaf, x))


def tf_rescaled(dataset: Any, scale: float) -> Any:
    """``dataset`` of ``(x, ...)`` with uint8 tensors of ``x`` cast and scaled in the graph."""
    import tensorflow as tf

    def leaf(tensor: Any) -> Any:
        if tensor.dtype != tf.uint8:
            return tensor
        return tf.cast(tensor, tf.float32) * tf.constant(scale, tf.float32)

    def convert(*parts: Any) -> tuple[Any, ...]:
        return _with_x(parts, lambda x: tf.nest.map_structure(leaf, x))

    return dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE)


def jax_rescaled(batch: tuple[Any, ...], scale: float) -> tuple[Any, ...]:
    """``batch`` with uint8 leaves of ``x`` as float32 ``x * scale``, computed by JAX.

    On a device-resident leaf this runs on the device (asynchronously, like any JAX op);
    a NumPy leaf becomes a ``jax.Array`` on the default device.
    """
    import jax
    import jax.numpy as jnp

    def leaf(array: Any) -> Any:
        if getattr(array, "dtype", None) != np.uint8:
            return array
        return jnp.asarray(array).astype(jnp.float32) * jnp.float32(scale)

    return _with_x(batch, lambda x: jax.tree_util.tree_map(leaf, x))


def torch_rescaled(batch: tuple[Any, ...], scale: float) -> tuple[Any, ...]:
    """``batch`` of tensors with uint8 leaves of ``x`` as float32 ``x * scale``, on their device."""
    import torch

    def leaf(tensor: Any) -> Any:
        if getattr(tensor, "dtype", None) != torch.uint8:
            return tensor
        return tensor.to(torch.float32).mul_(scale)

    return _with_x(batch, lambda x: map_tree(leaf, x))
