"""Argument checks every source kind shares, so each message is written once."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def check_batch_size(batch_size: Any, arg: str = "batch_size") -> int:
    """A positive int (bools and floats are refused, not rounded)."""
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int | np.integer)
        or batch_size <= 0
    ):
        raise ValueError(
            f"`{arg}` should be a positive integer value, but got {arg}={batch_size!r}. "
            "Pass e.g. batch_size=32."
        )
    return int(batch_size)


def check_split(at: Any, total: int, unit: str = "samples") -> int:
    """How many of ``total`` go to the second part: ``at`` items, or a fraction in (0, 1)."""
    if isinstance(at, bool) or not isinstance(at, int | float | np.integer | np.floating):
        raise TypeError(
            f"`split` takes an int count or a float fraction, but got {type(at).__name__}."
        )
    count = (
        total - math.floor(total * (1.0 - at)) if isinstance(at, float | np.floating) else int(at)
    )
    if not 0 < count < total:
        raise ValueError(
            f"`split` must leave both parts non-empty: 0 < count < {total} {unit} "
            f"(or 0 < fraction < 1), but got split={at!r} ({count} {unit}). "
            "Pass a smaller count or fraction."
        )
    return count


def reject_options(options: dict[str, Any], kind: str) -> None:
    """Refuse options that a source kind does not use, rather than ignore them."""
    if options:
        raise TypeError(
            f"{sorted(options)} are not options of {kind!r} sources. "
            "Remove them (workers/use_multiprocessing apply to Sequence sources)."
        )


def draw_seed() -> int:
    """A fresh seed for ``seed=None``: recorded on the source so its epochs stay reproducible."""
    return int(np.random.SeedSequence().generate_state(2, np.uint64)[0] >> np.uint64(1))
