"""Generators: a factory (restarted every epoch, shuffled by batch) and a single-pass iterator."""

from __future__ import annotations

import feeders
from tests.conformance.cases import Case


def _batches(x, y, batch_size):
    for start in range(0, len(x), batch_size):
        yield x[start : start + batch_size], y[start : start + batch_size]


def _factory(x, y, *, batch_size, shuffle, seed):
    return feeders.adapt(
        lambda: _batches(x, y, batch_size), shuffle=shuffle, seed=seed, shuffle_buffer=4
    )


def _single_pass(x, y, *, batch_size, shuffle, seed):
    return feeders.adapt(_batches(x, y, batch_size), shuffle=shuffle, seed=seed)


CASES = [
    # Shuffled by batch, so only the unshuffled run has batches in size order.
    Case("generator-factory", _factory, exact_batches=False),
    Case("generator-single-pass", _single_pass, reshuffles=False),
]
