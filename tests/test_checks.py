"""Argument checks (feeders/sources/_checks.py) and what each kind accepts (registry rows).

One wording: the argument, the value and its type, what is accepted, the fix.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

import feeders
from feeders.dispatch import COMMON, OPTIONS, AdaptOptions
from feeders.registry import _BUILTIN
from tests.sequence_helpers import CountingSequence
from tests.test_tf_data import BatchLog, recording_model

X, Y = np.arange(20, dtype=np.float32)[:, None], np.arange(20, dtype=np.float32)


def batches() -> Any:
    return iter([(X[:4], Y[:4]), (X[4:8], Y[4:8])])


KINDS = {
    "arrays": lambda **kw: feeders.adapt(X, Y, **kw),
    "tf.data": lambda **kw: feeders.adapt(
        tf.data.Dataset.from_tensor_slices((X, Y)).batch(4), **kw
    ),
    "sequence": lambda **kw: feeders.adapt(CountingSequence(), **kw),
    "generator": lambda **kw: feeders.adapt(lambda: batches(), **kw),
}


# -- seed ------------------------------------------------------------------------
SEEDS = {
    1.5: (TypeError, r"`seed` must be None or a non-negative integer, but got seed=1.5 \(float\)"),
    True: (TypeError, r"but got seed=True \(bool\)\. Pass e\.g\. seed=1337"),
    "seven": (TypeError, r"but got seed='seven' \(str\)"),
    -1: (ValueError, r"`seed` must be None or a non-negative integer, but got seed=-1\."),
}


@pytest.mark.parametrize("kind", KINDS, ids=str)
@pytest.mark.parametrize("seed", SEEDS, ids=repr)
def test_a_bad_seed_is_refused_at_adapt(kind: str, seed: Any) -> None:
    error, message = SEEDS[seed]
    with pytest.raises(error, match=message):
        KINDS[kind](seed=seed)


def test_numpy_integer_seeds_are_taken() -> None:
    assert feeders.adapt(X, Y, seed=np.int64(7)).source.seed == 7


# -- booleans ----------------------------------------------------------------------
BOOLEANS = {
    "shuffle": (
        "arrays",
        {"shuffle": "no"},
        r"`shuffle` must be True, False, None \(the source kind's default\) or 'batch' \(arrays\), "
        r"but got shuffle='no' \(str\)",
    ),
    "shuffle int": ("sequence", {"shuffle": 1}, r"but got shuffle=1 \(int\)"),
    "drop_remainder": (
        "arrays",
        {"drop_remainder": "yes"},
        r"`drop_remainder` must be True or False, but got drop_remainder='yes' \(str\)\. "
        r"Pass drop_remainder=True or drop_remainder=False\.",
    ),
    "use_multiprocessing": (
        "sequence",
        {"use_multiprocessing": "yes", "workers": 2},
        r"`use_multiprocessing` must be True or False, but got use_multiprocessing='yes' \(str\)",
    ),
}


@pytest.mark.parametrize("case", BOOLEANS, ids=str)
def test_a_non_bool_flag_is_refused_naming_the_argument(case: str) -> None:
    kind, arguments, message = BOOLEANS[case]
    with pytest.raises(TypeError, match=message):
        KINDS[kind](**arguments)


def test_a_bad_argument_fails_before_fit_with_its_own_type() -> None:
    log = BatchLog()
    model = recording_model(log)
    with pytest.raises(TypeError, match=r"but got seed=1\.5 \(float\)"):
        model.fit(feeders.adapt(X, Y, seed=1.5), epochs=1, verbose=0)


# -- class_weight ------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS, ids=str)
def test_an_empty_class_weight_is_refused(kind: str) -> None:
    with pytest.raises(ValueError, match=r"but got class_weight=\{\} \(no classes\)"):
        KINDS[kind](class_weight={})


def test_class_weight_coverage_of_in_memory_labels_is_checked_at_adapt() -> None:
    y = np.array([0, 1, 2, 1] * 5)
    with pytest.raises(ValueError, match=r"no weight for class\(es\) \[2\] found in y"):
        feeders.adapt(X, y, class_weight={0: 1.0, 1: 2.0})


# -- shuffle: None (the kind's default) and "batch" ----------------------------------
def test_shuffle_none_is_the_kinds_default() -> None:
    arrays = feeders.adapt(X, Y, batch_size=4, seed=0)
    sequence = feeders.adapt(CountingSequence(), seed=0)
    assert arrays.source.shuffle is True
    assert sequence.source.shuffle is False  # as Keras' PyDatasetAdapter
    assert [b[1].tolist() for b in arrays.epoch(0)] != [
        Y[i : i + 4].tolist() for i in range(0, 20, 4)
    ]


def test_shuffle_batch_shuffles_whole_batches_and_the_rows_within_them() -> None:
    feeder = feeders.adapt(X, Y, batch_size=4, shuffle="batch", seed=3)
    epochs = [[b[1].astype(int).tolist() for b in feeder.epoch(n)] for n in (0, 0, 1)]
    assert epochs[0] == epochs[1] != epochs[2]
    for epoch in epochs:
        assert sorted(np.concatenate(epoch).tolist()) == list(range(20))
        blocks = sorted(sorted(batch) for batch in epoch)
        assert blocks == [list(range(i, i + 4)) for i in range(0, 20, 4)]  # contiguous blocks
    assert any(batch != sorted(batch) for batch in epochs[0])  # rows shuffled within
    assert [sorted(b)[0] for b in epochs[0]] != [0, 4, 8, 12, 16]  # and the blocks' order


def test_shuffle_batch_keeps_the_partial_batch_last() -> None:
    feeder = feeders.adapt(X[:18], Y[:18], batch_size=4, shuffle="batch", seed=3)
    last = [b[1].astype(int).tolist() for b in feeder.epoch(0)][-1]
    assert sorted(last) == [16, 17]


def test_shuffle_batch_is_what_fit_trains_on() -> None:
    log = BatchLog()
    feeder = feeders.adapt(X, Y, batch_size=4, shuffle="batch", seed=3)
    expected = [b[1].tolist() for b in feeder.epoch(0)]
    feeder.seek(0)
    recording_model(log).fit(feeder, epochs=1, verbose=0, callbacks=[log])
    assert log.runs == [("train", expected)]


@pytest.mark.parametrize("kind", ["tf.data", "sequence", "generator"])
def test_shuffle_batch_is_refused_for_kinds_that_yield_whole_batches(kind: str) -> None:
    with pytest.raises(ValueError, match=r"`shuffle='batch'` .* in-memory arrays only"):
        KINDS[kind](shuffle="batch")


# -- what each kind accepts: data in its registry row ---------------------------------
REFUSED = {
    "arrays workers": (
        "arrays",
        {"workers": 2},
        r"`workers` does not apply to 'arrays' sources \(it applies to sequence\)",
    ),
    "sequence y": (
        "sequence",
        {"y": Y},
        r"`y` does not apply to 'sequence' sources \(it applies to arrays\), but got y of type ndarray.*return \(x, y, sample_weight\) from __getitem__",
    ),
    "sequence batch_size": (
        "sequence",
        {"batch_size": 8},
        r"`batch_size` does not apply to 'sequence' sources \(it applies to arrays, tf\.data\)",
    ),
    "generator sample_weight": (
        "generator",
        {"sample_weight": Y},
        r"`sample_weight` does not apply to 'generator' sources",
    ),
    "tf.data num_batches": (
        "tf.data",
        {"num_batches": 3},
        r"`num_batches` does not apply to 'tf.data' sources \(it applies to torch DataLoader, grain, generator\)",
    ),
}


@pytest.mark.parametrize("case", REFUSED, ids=str)
def test_an_argument_the_kind_does_not_take_is_one_type_error(case: str) -> None:
    kind, arguments, message = REFUSED[case]
    with pytest.raises(TypeError, match=message):
        KINDS[kind](**arguments)


def test_a_misspelled_option_fails_at_run_time_listing_the_options() -> None:
    with pytest.raises(
        TypeError,
        match=r"`worker` is not an argument of feeders\.adapt, but got worker=2\. Did you mean "
        r"workers=\? Its options are \['cardinality', 'drop_remainder', 'max_queue_size', ",
    ):
        feeders.adapt(CountingSequence(), worker=2)  # type: ignore[call-arg]


@pytest.mark.slow
def test_a_misspelled_option_fails_mypy(tmp_path: Path) -> None:
    script = tmp_path / "typo.py"
    script.write_text(
        textwrap.dedent(
            """
            import numpy as np
            import feeders
            feeders.adapt(np.zeros((4, 1)), worker=2)
            feeders.adapt(np.zeros((4, 1)), workers=2, drop_remainder=True)
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", str(script)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
        check=False,
    )
    assert 'typo.py:4: error: Unexpected keyword argument "worker" for "adapt"' in result.stdout
    assert "Found 1 error" in result.stdout


def test_every_builtin_row_declares_exactly_its_factorys_own_options() -> None:
    for kind in _BUILTIN:
        module, _, name = str(kind.factory).partition(":")
        factory = getattr(__import__(module, fromlist=[name]), name)
        _, *keywords = inspect.signature(factory).parameters
        assert COMMON | {"shuffle", "seed"} <= set(keywords), kind.name
        assert kind.accepts is not None
        assert kind.accepts - COMMON == set(keywords) - COMMON - {"shuffle", "seed"}, kind.name


def test_adapt_options_are_every_kinds_own_options() -> None:
    declared = set().union(*(kind.accepts or set() for kind in _BUILTIN)) - COMMON
    assert declared == OPTIONS == set(AdaptOptions.__annotations__)
