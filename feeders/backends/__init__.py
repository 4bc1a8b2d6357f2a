"""What each Keras backend is handed: one module per backend's iterator.

Keras asks a data adapter for ``get_tf_dataset()`` (TensorFlow),
``get_jax_iterator()`` (JAX), ``get_torch_dataloader()`` (PyTorch) or
``get_numpy_iterator()`` (anything else). A :class:`~feeders.Feeder` answers
all four from the same NumPy batches (``Feeder._keras_pass``), so every
backend trains on identical batches in identical order; these modules only
change *where* a batch lives when it reaches the model:

- :mod:`feeders.backends.jax_batches`: NumPy batches, put on the accelerator one
  step ahead with ``jax.device_put`` (asynchronous), so the copy overlaps the step.
- :mod:`feeders.backends.torch_loader`: a ``torch.utils.data.DataLoader`` over the
  feeder's own batches (no second pool of worker processes), zero-copy
  ``torch.from_numpy`` tensors, pinned and sent to CUDA one step ahead when it is there.

The TensorFlow hand-off (``as_dataset()``) stays in :mod:`feeders.feeder`.
Neither module imports its framework until a backend asks for it.
"""
