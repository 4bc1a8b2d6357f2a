"""``feeders.adapt``: any training input → a :class:`~feeders.feeder.Feeder`.

Why the arguments are checked here: what each source kind accepts is data in
its registry row (:class:`~feeders.registry.SourceKind`), so one function
refuses, with one wording and one exception type (``TypeError``, as Python
refuses an unexpected keyword), an argument the kind does not take, and a
misspelled option fails both mypy (:class:`AdaptOptions`) and the call.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict, Unpack

from feeders.feeder import Feeder
from feeders.registry import SourceKind, find_source_kind, source_kinds
from feeders.sharding import (
    call_with_shard,
    check_shared_seed,
    per_process_batch_size,
    resolve_shard,
    shard_source,
)
from feeders.sources._checks import Shuffle, check_bool, check_seed, check_shuffle
from feeders.structure import Tree
from feeders.weights import check_class_weight_coverage


class AdaptOptions(TypedDict, total=False):
    """The kind-specific options of :func:`adapt`; each kind's registry row says which it takes."""

    drop_remainder: bool
    """arrays, tf.data (with ``batch_size``): drop the last partial batch."""
    shuffle_buffer: int | None
    """tf.data, generators: shuffle through a buffer of this many elements/batches."""
    num_batches: int | None
    """generators: batches per pass, when known up front."""
    cardinality: int | None
    """tf.data: the number of elements when TensorFlow cannot tell."""
    workers: int
    """Sequences: threads or processes fetching batches (``0``: the calling thread)."""
    use_multiprocessing: bool
    """Sequences: processes instead of threads."""
    max_queue_size: int
    """Sequences: most batches in flight or ready at once."""


OPTIONS = frozenset(AdaptOptions.__optional_keys__)
COMMON = frozenset({"y", "sample_weight", "batch_size"})
_BOOLEANS = ("drop_remainder", "use_multiprocessing")


def adapt(
    source: Any,
    y: Tree | None = None,
    *,
    sample_weight: Tree | None = None,
    class_weight: Mapping[Any, Any] | Sequence[Any] | None = None,
    batch_size: int | None = None,
    shuffle: Shuffle | None = None,
    seed: int | None = None,
    steps_per_epoch: int | None = None,
    model: Any = None,
    shard: tuple[int, int] | str | None = None,
    global_batch_size: int | None = None,
    **options: Unpack[AdaptOptions],
) -> Feeder:
    """Wrap ``source`` in the feeder of its kind, found in :mod:`feeders.registry`.

    The arguments are Keras' own (``x, y, sample_weight, class_weight,
    batch_size, shuffle, steps_per_epoch``); ``shuffle=None`` is the kind's
    default (arrays, tf.data and generators shuffle, a Sequence does not; tf.data
    and generators only with ``shuffle_buffer``), ``shuffle="batch"`` is Keras'
    batch-wise shuffle (arrays). ``seed`` makes shuffling reproducible;
    ``model`` binds the feeder to it now (:meth:`Feeder.bind`: dict keys and list
    lengths checked against its inputs and outputs). Kind-specific options are
    :class:`AdaptOptions`. ``class_weight`` must cover every label of in-memory
    targets, checked here.

    ``shard=(index, count)`` or ``"auto"``: this process reads its part of every
    epoch for data-parallel training (:mod:`feeders.sharding`); ``batch_size``
    is then per process, or give ``global_batch_size`` (``batch_size * count``).
    A generator factory that takes an argument is called as ``factory(shard)``.

    Raises:
        TypeError: no source kind accepts ``source`` (the message lists the kinds);
            an option that is misspelled or that this kind does not take; an
            argument of the wrong type (``seed=1.5``, ``shuffle="no"``).
        ValueError: an argument out of range, or a label ``class_weight`` misses.
    """
    if isinstance(source, Feeder):
        return source
    kind = find_source_kind(source)
    sharded = resolve_shard(shard)
    batch_size = per_process_batch_size(batch_size, global_batch_size, sharded)
    given = {"y": y, "sample_weight": sample_weight, "batch_size": batch_size, **options}
    forwarded = check_arguments(kind, given)
    check_seed(seed)
    resolved = (
        kind.default_shuffle
        if shuffle is None
        else check_shuffle(shuffle, batchwise=kind.batchwise_shuffle)
    )
    for name in _BOOLEANS:
        if name in forwarded:
            check_bool(forwarded[name], name)
    if sharded is not None:
        check_shared_seed(seed, resolved)
        source = call_with_shard(source, sharded)
    made = kind.make(
        source,
        y,
        sample_weight=sample_weight,
        batch_size=batch_size,
        shuffle=resolved,
        seed=seed,
        **forwarded,
    )
    if sharded is not None:
        made = shard_source(made, sharded)
    feeder = Feeder(
        made, class_weight=class_weight, steps_per_epoch=steps_per_epoch, kind=kind.name
    )
    check_class_weight_coverage(class_weight, made)
    return feeder if model is None else feeder.bind(model)


def check_arguments(kind: SourceKind, given: Mapping[str, Any]) -> dict[str, Any]:
    """The options to pass to ``kind``'s factory; refuses what the kind does not take.

    An argument left at ``None`` counts as not given. ``y``, ``sample_weight``
    and ``batch_size`` are passed to every factory (``None`` when not given).

    Raises:
        TypeError: names the argument, the kinds it applies to, what this kind
            takes and the fix; a misspelled option lists the valid ones.
    """
    for name, value in given.items():
        if name in COMMON | OPTIONS or kind.accepts is None:
            continue
        close = difflib.get_close_matches(name, sorted(OPTIONS | COMMON), n=1)
        maybe = f"Did you mean {close[0]}=? " if close else ""
        raise TypeError(
            f"`{name}` is not an argument of feeders.adapt, but got {name}={value!r}. {maybe}"
            f"Its options are {sorted(OPTIONS)} (see feeders.AdaptOptions)."
        )
    if kind.accepts is None:
        return {k: v for k, v in given.items() if k not in COMMON}
    for name, value in given.items():
        if value is not None and name not in kind.accepts:
            others = [k.name for k in source_kinds() if k.accepts and name in k.accepts]
            raise TypeError(
                f"`{name}` does not apply to {kind.name!r} sources (it applies to "
                f"{', '.join(others) or 'none'}), but got {name} of type "
                f"{type(value).__name__}. {kind.name!r} sources take "
                f"{sorted(kind.accepts | {'shuffle', 'seed'})}. {kind.hint or 'Remove it.'}"
            )
    return {k: v for k, v in given.items() if k in kind.accepts and k not in COMMON}
