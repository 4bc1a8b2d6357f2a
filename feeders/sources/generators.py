"""Python generators as a source: a factory restarted every epoch, or one single-pass iterator.

Why it is shaped this way: Keras peeks the first batches of a generator to learn
their shapes and replays them at the start of every later pass, so a finite
generator of 10 batches trains on 10, then 2, then 2. This source peeks the
first batch **once**, at construction, to infer the :class:`BatchSpec`, and
yields it exactly once, as batch 0 of the first pass. Every later batch is
checked against that spec by :class:`feeders.structure.BatchChecker` (structure,
dtype, shape apart from the batch dimension, equal batch sizes across parts,
weights), so a bad batch fails with its index and field instead of deep inside
the model.

* A **callable** returning a fresh iterator (``make_batches``, a generator
  function, ``lambda: iter(batches)``) is called once per epoch. It may be
  split (by batches) and, with ``shuffle_buffer=n``, shuffled by batch: a
  buffer of ``n`` batches, seeded from ``(seed, epoch)``, so the order is new
  every epoch and reproducible.
* A plain **iterator** is read once. A second pass is an error, never a silently
  short epoch; with ``steps_per_epoch`` the feeder streams it across epochs and
  says how many batches it had when it runs out.

The number of batches per pass is ``num_batches=`` when given, else learned at
the end of the first complete pass; a later pass that yields a different number
is an error. Resuming at batch ``start`` draws and drops the first ``start``
batches (a generator cannot seek).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from feeders.sharding import Shard, ShardedFactory
from feeders.sources._checks import check_batch_size, check_bool, check_split, resolve_seed
from feeders.structure import ELEMENT_FORMS, Batch, BatchChecker, BatchSpec, Tree, first_spec

if TYPE_CHECKING:
    from feeders.service_graph import ServiceGraph


class GeneratorSource:
    """Batches from a generator factory (one call per epoch) or a single-pass iterator.

    Args:
        generator: a callable returning an iterator of batches, or an iterator.
        shuffle, seed, shuffle_buffer: shuffle by batch (factories and iterators),
            only when ``shuffle_buffer`` is given; see the module docstring.
        num_batches: batches per pass, when known up front.
        window: the ``[start, stop)`` batches of each pass this source keeps
            (set by :meth:`split`).
        spec: the batches' spec, when known (set by :meth:`split`): no peek.

    Raises:
        TypeError: ``generator`` is neither, or its factory returns no iterator.
        ValueError: the first batch is missing or malformed.
    """

    def __init__(
        self,
        generator: Callable[[], Iterable[Any]] | Iterator[Any],
        *,
        shuffle: bool = True,
        seed: int | None = None,
        shuffle_buffer: int | None = None,
        num_batches: int | None = None,
        window: tuple[int, int | None] = (0, None),
        spec: BatchSpec | None = None,
    ) -> None:
        self.single_pass = hasattr(generator, "__next__")
        if not self.single_pass and not callable(generator):
            raise TypeError(
                "`generator` must be an iterator or a callable returning one, but got "
                f"{type(generator).__name__}."
            )
        self._generator = generator
        self.shuffle_buffer = (
            None
            if shuffle_buffer is None or not check_bool(shuffle, "shuffle")
            else check_batch_size(shuffle_buffer, "shuffle_buffer")
        )
        self.seed = resolve_seed(seed)
        self._declared = (
            None if num_batches is None else check_batch_size(num_batches, "num_batches")
        )
        self._learned: int | None = None
        self._window = window
        self._served: int | None = None
        self._pending: tuple[Any, Iterator[Any]] | None = None
        if spec is None:
            iterator = self._fresh()
            try:
                first = next(iterator)
            except StopIteration:
                raise ValueError(
                    "`generator` yielded no batches; it must yield at least one "
                    f"{ELEMENT_FORMS} batch."
                ) from None
            self._pending = (first, iterator)
            spec = first_spec(first, lambda: _name(0) + " (epoch 0)")
        self._spec = spec
        self._check = BatchChecker(spec, _name, "batch 0")

    # -- the Source contract ---------------------------------------------------
    @property
    def num_batches(self) -> int | None:
        total = self._declared if self._declared is not None else self._learned
        start, stop = self._window
        if stop is not None:
            return stop - start
        return None if total is None else total - start

    @property
    def spec(self) -> BatchSpec:
        return self._spec

    def epoch(self, n: int, start: int = 0) -> Iterator[Batch]:
        return self._epoch(n, start, shuffle=True)

    def epoch_in_order(self, n: int, start: int = 0, *, counts: bool = True) -> Iterator[Batch]:
        """A pass without the ``shuffle_buffer`` (the generator's own order)."""
        return self._epoch(n, start, shuffle=False)

    def _epoch(self, n: int, start: int, *, shuffle: bool) -> Iterator[Batch]:
        batches = self._pass(n)
        if self.shuffle_buffer is not None and shuffle:
            batches = _buffer_shuffle(
                batches, self.shuffle_buffer, np.random.default_rng([self.seed, n])
            )
        return itertools.islice(batches, start, None) if start else batches

    @property
    def process_shard(self) -> Shard | None:
        """The shard the factory was called with (``adapt(shard=...)``), or ``None``."""
        made = self._generator
        return made.shard if isinstance(made, ShardedFactory) else None

    def shard(self, shard: Shard) -> GeneratorSource:
        """This source, when its factory was already given ``shard`` (a generator cannot seek)."""
        if self.process_shard != shard:
            raise TypeError(
                f"A generator cannot be sharded after it is made ({shard} was asked). Pass "
                "shard= to feeders.adapt with a factory that takes the shard, e.g. "
                "def batches(shard): ... yielding global batches shard.index::shard.count, "
                "the same number on every process."
            )
        return self

    def service_graph(self, epoch: int, mode: str) -> ServiceGraph:
        """Refused: a generator's batches are Python code, which a service worker cannot run."""
        from feeders.service_graph import not_servable

        raise not_servable("a Python generator")

    def close(self) -> None:
        """Close a pending generator (``generator.close()``), if it has one."""
        if self._pending is not None:
            getattr(self._pending[1], "close", lambda: None)()
            self._pending = None

    # -- one pass --------------------------------------------------------------
    def _fresh(self) -> Iterator[Any]:
        if self.single_pass:
            return self._generator  # type: ignore[return-value]
        made = self._generator()  # type: ignore[operator]
        if not isinstance(made, Iterable):
            raise TypeError(
                "`generator` is a callable, so it must return an iterator of batches, but it "
                f"returned {type(made).__name__}. Return a generator, or pass the iterator itself."
            )
        return iter(made)

    def _pass(self, n: int) -> Iterator[Batch]:
        if self._pending is not None:
            first, iterator = self._pending
            self._pending = None
            elements: Iterator[Any] = itertools.chain((first,), iterator)
        elif self.single_pass:
            raise ValueError(
                f"The single-pass generator was already read ({self._served} batches) and cannot "
                f"restart for epoch {n}. Pass a callable that returns a fresh generator (e.g. "
                "`lambda: make_batches()`), or train for one epoch, or set steps_per_epoch to "
                "stream it across epochs."
            )
        else:
            elements = self._fresh()
        return self._checked(elements, n)

    def _checked(self, elements: Iterator[Any], n: int) -> Iterator[Batch]:
        start, stop = self._window
        expected = self._declared if self._declared is not None else self._learned
        rule = (
            f"num_batches={expected}"
            if self._declared is not None
            else f"the {expected} batches of its first pass"
        )
        check = self._check
        count = 0
        self._served = 0
        for i, element in enumerate(elements):
            if stop is not None and i >= stop:
                return
            if expected is not None and i >= expected:
                raise ValueError(
                    f"The generator yielded more than {rule} in epoch {n} (batch {i} is extra). "
                    "Every pass must yield the same number of batches; fix num_batches or the "
                    "generator."
                )
            count = i + 1
            if i >= start:
                self._served = count
                yield check(element, i, n)
        if expected is not None and count < expected:
            raise ValueError(
                f"The generator ended after {count} batches in epoch {n}, but a pass has "
                f"{rule}. Every pass must yield the same number of batches; fix num_batches or "
                "the generator."
            )
        if expected is None:
            self._learned = count

    # -- validation split ------------------------------------------------------
    def split(self, at: int | float) -> tuple[GeneratorSource, GeneratorSource]:
        """The first batches of every pass for training, the last ``at`` (or fraction) for validation.

        Both parts call the factory for every pass; the validation part draws
        and drops the training batches first (a generator cannot seek), so a
        costly generator is better split at its own source.
        """
        if self.single_pass:
            raise ValueError(
                "`split` needs a callable that returns a fresh generator every pass, but got a "
                "single-pass iterator. Pass the generator function (or a lambda) instead."
            )
        total = self.num_batches
        if total is None:
            raise ValueError(
                "`split` needs the number of batches a pass yields, but it is not known yet. "
                "Pass num_batches=... to feeders.adapt, or split after one full epoch."
            )
        cut = total - check_split(at, total, "batches")
        self.close()

        def part(window: tuple[int, int | None], shuffle: bool) -> GeneratorSource:
            return GeneratorSource(
                self._generator,
                shuffle=shuffle,
                seed=self.seed,
                shuffle_buffer=self.shuffle_buffer,
                num_batches=total,
                window=window,
                spec=self._spec,
            )

        return part((0, cut), True), part((cut, None), False)


def from_generator(
    generator: Callable[[], Iterable[Any]] | Iterator[Any],
    y: Tree | None = None,
    *,
    sample_weight: Tree | None = None,
    batch_size: int | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    shuffle_buffer: int | None = None,
    num_batches: int | None = None,
) -> GeneratorSource:
    """Registry factory for the ``"generator"`` kind.

    ``y``, ``sample_weight`` and ``batch_size`` are always ``None`` here: its
    registry row refuses them (a generator yields whole batches).
    """
    return GeneratorSource(
        generator,
        shuffle=shuffle,
        seed=seed,
        shuffle_buffer=shuffle_buffer,
        num_batches=num_batches,
    )


def _name(index: int) -> str:
    return f"batch {index} of the generator"


def _buffer_shuffle(
    batches: Iterator[Batch], size: int, rng: np.random.Generator
) -> Iterator[Batch]:
    """Shuffle by batch through a buffer of ``size`` batches, as ``tf.data``'s ``shuffle``."""
    buffer: list[Batch] = []
    for batch in batches:
        if len(buffer) < size:
            buffer.append(batch)
            continue
        i = int(rng.integers(size))
        yield buffer[i]
        buffer[i] = batch
    for i in rng.permutation(len(buffer)):
        yield buffer[i]
