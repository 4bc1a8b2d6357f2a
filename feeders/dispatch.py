"""``feeders.adapt``: any training input → a :class:`~feeders.feeder.Feeder`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from feeders.feeder import Feeder
from feeders.registry import find_source_kind
from feeders.sharding import (
    call_with_shard,
    check_seed,
    per_process_batch_size,
    resolve_shard,
    shard_source,
)
from feeders.structure import Tree


def adapt(
    source: Any,
    y: Tree | None = None,
    *,
    sample_weight: Tree | None = None,
    class_weight: Mapping[Any, Any] | Sequence[Any] | None = None,
    batch_size: int | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    steps_per_epoch: int | None = None,
    model: Any = None,
    shard: tuple[int, int] | str | None = None,
    global_batch_size: int | None = None,
    **options: Any,
) -> Feeder:
    """Wrap ``source`` in the feeder of its kind, found in :mod:`feeders.registry`.

    The arguments are Keras' own (``x, y, sample_weight, class_weight,
    batch_size, shuffle, steps_per_epoch``); ``seed`` makes shuffling
    reproducible; ``model`` binds the feeder to it now (:meth:`Feeder.bind`:
    dict keys and list lengths checked against its inputs and outputs);
    kind-specific options (``drop_remainder``, ``workers``, ...)
    go to that kind's factory, which refuses those it does not use.

    ``shard=(index, count)`` or ``"auto"``: this process reads its part of every
    epoch for data-parallel training (:mod:`feeders.sharding`); ``batch_size``
    is then per process, or give ``global_batch_size`` (``batch_size * count``).
    A generator factory that takes an argument is called as ``factory(shard)``.

    Raises:
        TypeError: no source kind accepts ``source`` (the message lists the kinds).
    """
    if isinstance(source, Feeder):
        return source
    kind = find_source_kind(source)
    sharded = resolve_shard(shard)
    batch_size = per_process_batch_size(batch_size, global_batch_size, sharded)
    if sharded is not None:
        check_seed(seed, shuffle)
        source = call_with_shard(source, sharded)
    made = kind.make(
        source,
        y,
        sample_weight=sample_weight,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        **options,
    )
    if sharded is not None:
        made = shard_source(made, sharded)
    feeder = Feeder(
        made, class_weight=class_weight, steps_per_epoch=steps_per_epoch, kind=kind.name
    )
    return feeder if model is None else feeder.bind(model)
