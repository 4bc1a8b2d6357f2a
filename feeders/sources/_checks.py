"""Argument checks every source kind shares, so each message is written once.

One wording throughout: name the argument, echo the value (its type, or its
shape for arrays), say what is accepted and give the fix, e.g.
`` `seed` must be None or a non-negative integer, but got seed=1.5 (float). ``
``TypeError`` for a value of the wrong type, ``ValueError`` for one out of range.
Bools are refused where a number is expected and numbers where a bool is:
Python's ``bool("no")`` is ``True``, so nothing here is coerced.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

Shuffle = bool | Literal["batch"]
"""``shuffle``: a new order every epoch, none, or Keras' ``"batch"`` (arrays only)."""


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


def _shown(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_bool(value: Any, arg: str) -> bool:
    """``True`` or ``False`` (NumPy bools too); ``"no"``, ``1`` and ``None`` are refused."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise TypeError(
        f"`{arg}` must be True or False, but got {arg}={_shown(value)}. Pass {arg}=True or "
        f"{arg}=False."
    )


def check_shuffle(value: Any, *, batchwise: bool) -> Shuffle:
    """``shuffle``: a bool, or ``"batch"`` where the kind supports batch-wise shuffling."""
    if value == "batch" and isinstance(value, str):
        if batchwise:
            return "batch"
        raise ValueError(
            "`shuffle='batch'` (Keras' batch-wise shuffle: batch order and rows within each "
            "batch) is supported for in-memory arrays only, but this source yields whole "
            "batches. Pass shuffle=True or shuffle=False."
        )
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise TypeError(
        f"`shuffle` must be True, False, None (the source kind's default) or 'batch' (arrays), "
        f"but got shuffle={_shown(value)}. Pass shuffle=True or shuffle=False."
    )


def check_seed(seed: Any) -> int | None:
    """``None`` or a non-negative int; ``1.5``, ``True`` and ``"7"`` are refused, not rounded."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(
            f"`seed` must be None or a non-negative integer, but got seed={_shown(seed)}. "
            "Pass e.g. seed=1337."
        )
    if seed < 0:
        raise ValueError(
            f"`seed` must be None or a non-negative integer, but got seed={seed}. "
            "Pass e.g. seed=1337."
        )
    return int(seed)


def resolve_seed(seed: Any) -> int:
    """The checked ``seed``, or a fresh one for ``None`` (recorded by the source)."""
    checked = check_seed(seed)
    return draw_seed() if checked is None else checked


def draw_seed() -> int:
    """A fresh seed for ``seed=None``: recorded on the source so its epochs stay reproducible."""
    return int(np.random.SeedSequence().generate_state(2, np.uint64)[0] >> np.uint64(1))


def check_position(
    state: Mapping[str, Any], num_batches: int | None, where: str
) -> tuple[int, int]:
    """``(epoch, batch)`` from a saved resume state: ints, ``epoch >= 0``, ``0 <= batch < num_batches``.

    Why strict: a position that is off resumes silently at the wrong batch (JSON
    ``true`` is 1), skipping or repeating data; an ``Infinity`` overflows later.

    Raises:
        ValueError: a field is missing, not an int, or out of range; the message names it.
    """
    position = []
    for field in ("epoch", "batch"):
        value = state.get(field)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(
                f"The feeder state {where} has `{field}`={_shown(value)}; it must be an "
                "integer. The file was edited or corrupted: delete the checkpoint directory to "
                "start over, or restore it from a backup."
            )
        position.append(value)
    epoch, batch = position
    limit = "" if num_batches is None else f" and below num_batches={num_batches}"
    for field, value, ok in (
        ("epoch", epoch, epoch >= 0),
        ("batch", batch, batch >= 0 and (num_batches is None or batch < num_batches)),
    ):
        if not ok:
            bounds = ">= 0" if field == "epoch" else f">= 0{limit}"
            raise ValueError(
                f"The feeder state {where} has `{field}`={value}; it must be {bounds}. The "
                "file was edited or corrupted: delete the checkpoint directory to start over, "
                "or restore it from a backup."
            )
    return epoch, batch
