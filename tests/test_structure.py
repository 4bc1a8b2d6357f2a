"""structure.py: one unpacking of a batch and one per-batch check against the first batch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from feeders.structure import BatchChecker, BatchSpec, first_spec, unpack

X, Y, W = np.zeros((4, 3), np.float32), np.arange(4), np.ones(4, np.float32)


def name() -> str:
    return "batch 7 of the test"


@pytest.mark.parametrize(
    "element,parts",
    [
        (X, 1),
        ((X,), 1),
        ((X, Y), 2),
        ([X, Y], 2),
        ((X, Y, None), 2),
        ((X, None, None), 1),
        ((X, Y, W), 3),
    ],
    ids=["x", "(x,)", "(x, y)", "[x, y]", "(x, y, None)", "(x, None, None)", "(x, y, w)"],
)
def test_unpack_reads_batches_as_keras_does(element: Any, parts: int) -> None:
    assert len(unpack(element, name)) == parts


def test_unpack_refuses_four_parts_naming_the_batch() -> None:
    with pytest.raises(
        ValueError, match=r"must be `x`, .* but batch 7 of the test is a tuple of 4"
    ):
        unpack((X, Y, W, W), name)


def checker(first: Any) -> BatchChecker:
    return BatchChecker(first_spec(first, name), lambda i: f"batch {i} of the test", "batch 0")


def test_leaves_come_out_as_numpy_with_their_values() -> None:
    check = checker(({"a": X, "b": [X, X]}, Y, W))
    x, y, _ = check(({"a": tf.constant(X + 1), "b": [X, X + 2]}, tf.constant(Y), W), 1, 0)
    assert type(x["a"]) is np.ndarray and type(y) is np.ndarray
    np.testing.assert_array_equal(x["a"], X + 1)
    np.testing.assert_array_equal(x["b"][1], X + 2)
    assert x["b"][0] is X  # an ndarray is passed through, not copied


def test_a_partial_last_batch_passes() -> None:
    x, y, w = checker((X, Y, W))((X[:1], Y[:1], W[:1]), 5, 2)
    assert (len(x), len(y), len(w)) == (1, 1, 1)


FIRST, LISTED = (X, Y, W), ([X, X], Y, W)
BAD = {
    "dtype": (
        FIRST,
        (X.astype(np.float64), Y, W),
        r"changed x: it has dtype float64 where batch 0 had dtype float32",
    ),
    "rank": (
        FIRST,
        (X[..., None], Y, W),
        r"changed x: it has shape \(4, 3, 1\) where batch 0 had shape \(None, 3\)",
    ),
    "width": (
        FIRST,
        (X[:, :2], Y, W),
        r"changed x: it has shape \(4, 2\) where batch 0 had shape \(None, 3\)",
    ),
    "None y": (FIRST, (X, None, W), r"changed y: it has None where batch 0 had an array"),
    "parts": (FIRST, (X, Y), r"has 2 parts but batch 0 had 3 \(x, y, sample_weight\)"),
    "None leaf": (
        LISTED,
        ([X, None], Y, W),
        r"changed x\[1\]: it has None where batch 0 had an array",
    ),
    "list length": (
        LISTED,
        ([X], Y, W),
        r"changed x: it has a list of 1 where batch 0 had a list of 2",
    ),
    "rows": (
        FIRST,
        (X, Y[:3], W),
        r"different batch sizes: \{'x': 4, 'y': 3, 'sample_weight': 4\}",
    ),
    "NaN": (
        FIRST,
        (X, Y, np.array([1, np.nan, 1, 1], np.float32)),
        r"`sample_weight` of batch 3 of the test \(epoch 1\) must be finite and non-negative, but got 1 bad value\(s\) \(shape \(4,\); first at index \(1,\): nan\)",
    ),
    "negative": (
        FIRST,
        (X, Y, -W),
        r"`sample_weight` of batch 3 of the test \(epoch 1\) must be finite and non-negative, but got 4 bad",
    ),
    "inf": (
        FIRST,
        (X, Y, np.full(4, np.inf, np.float32)),
        r"must be finite and non-negative, but got 4 bad",
    ),
}


@pytest.mark.parametrize("bad", BAD, ids=str)
def test_a_changed_batch_names_index_epoch_and_field(bad: str) -> None:
    first, element, message = BAD[bad]
    with pytest.raises(ValueError, match=message):
        checker(first)(element, 3, 1)


def test_a_changed_dict_names_its_keys() -> None:
    with pytest.raises(
        ValueError, match=r"changed x: it has keys \['b'\] where batch 0 had keys \['a'\]"
    ):
        checker(({"a": X}, Y))(({"b": X}, Y), 1, 0)


def test_the_first_batch_refuses_none_object_and_weights_without_targets() -> None:
    with pytest.raises(ValueError, match=r"Batch 7 of the test has x\['b'\] None"):
        first_spec(({"a": X, "b": None}, Y), name)
    with pytest.raises(TypeError, match=r"has y of dtype object \(shape \(2,\)\)"):
        first_spec((X, np.array([[1], [1, 2]], dtype=object)), name)
    with pytest.raises(ValueError, match="has sample_weight but y is None"):
        first_spec((X, None, W), name)


def test_the_spec_leaves_the_batch_dimension_open() -> None:
    spec = first_spec((X, Y), name)
    assert spec == BatchSpec.of((X, Y, None))
    assert spec.x.shape == (None, 3)
