"""tf.data pipelines: batched by the user (their order), and batched + seeded-shuffled by feeders."""

from __future__ import annotations

import tensorflow as tf

import feeders
from tests.conformance.cases import Case


def _batched(x, y, *, batch_size, shuffle, seed):
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    return feeders.adapt(dataset, shuffle=shuffle, seed=seed)


def _samples(x, y, *, batch_size, shuffle, seed):
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    return feeders.adapt(
        dataset, batch_size=batch_size, shuffle=shuffle, seed=seed, shuffle_buffer=len(x)
    )


CASES = [
    Case("tf.data-batched", _batched, reshuffles=False),
    Case("tf.data-samples", _samples),
]
