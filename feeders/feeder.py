"""The feeder contract (:class:`Source`) and the :class:`Feeder` every source is wrapped in.

A *source* knows how to make the batches of epoch ``n`` (which samples, in which
order, fetched how). The :class:`Feeder` adds what is the same for every source:
weights, the Keras hand-off (``fit``/``evaluate``/``predict`` take it directly),
``as_dataset()``, ``split()``, ``bind(model)`` and the epoch counter that makes
each pass over the data a new, seeded epoch.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from feeders._tf import require_tf
from feeders.keras_glue import DataAdapter, outputs_are_a_dict
from feeders.structure import (
    ArraySpec,
    Batch,
    BatchSpec,
    Tree,
    check_names,
    flatten,
    lists_to_tuples,
    map_tree,
)
from feeders.weights import Weighting, tf_weighting


@runtime_checkable
class Source(Protocol):
    """What a source kind implements; plug-ins need not inherit from anything.

    ``epoch(n, start)`` must be deterministic for a given seed and ``n`` (a
    different order per epoch when shuffling), and start at batch ``start`` so a
    crashed run can resume mid-epoch. Optional extras a source may have:
    ``split(at)``, ``batch_size``, ``partial_batch_size``, ``seed``.
    """

    @property
    def num_batches(self) -> int | None:
        """Batches per epoch, or ``None`` when unknown."""
        ...

    @property
    def spec(self) -> BatchSpec:
        """Structure, shapes and dtypes of every batch."""
        ...

    def epoch(self, n: int, start: int = 0) -> Iterator[Batch]:
        """The batches of epoch ``n`` from batch ``start`` on, as NumPy ``(x, y, sample_weight)``."""
        ...

    def close(self) -> None:
        """Release workers, files and memory; idempotent."""
        ...


class Feeder(DataAdapter):  # type: ignore[misc]
    """A source made ready for Keras: weighted, checked, counted.

    Pass it to ``model.fit(feeder)``, ``validation_data=feeder``,
    ``evaluate(feeder)`` or ``predict(feeder)``. Each pass Keras makes over it is
    the next epoch of the source (``epoch(0)``, ``epoch(1)``, ...), so shuffling
    is reseeded per epoch and reproducible.

    Args:
        source: anything implementing :class:`Source`.
        class_weight: see :mod:`feeders.weights`.
        steps_per_epoch: batches per pass; the next pass continues where the
            last one stopped (across epoch boundaries), as in the Keras guide.
        kind: the registry name of the source kind, for messages.
    """

    def __init__(
        self,
        source: Source,
        *,
        class_weight: Mapping[Any, Any] | Sequence[Any] | None = None,
        steps_per_epoch: int | None = None,
        kind: str = "custom",
    ) -> None:
        if not isinstance(source, Source):
            raise TypeError(
                f"`source` must implement feeders.Source (num_batches, spec, epoch, close), "
                f"but got {type(source).__name__}."
            )
        self.source = source
        self.kind = kind
        self._class_weight = class_weight
        self._steps = _check_steps(steps_per_epoch, source.num_batches)
        self._weighting = Weighting(class_weight, source.spec.y)
        self._next_epoch = 0
        self._start = 0
        self._pass_start = (0, 0)
        self._stream: Iterator[Batch] | None = None
        self._native_stream: Any = None
        self._timing = _PythonPath()

    # -- the Source contract -------------------------------------------------
    @property
    def num_batches(self) -> int | None:
        return self._steps if self._steps is not None else self.source.num_batches

    @property
    def spec(self) -> BatchSpec:
        source_spec = self.source.spec
        if not self._weighting.active:
            return source_spec
        return BatchSpec(source_spec.x, source_spec.y, _weight_spec(self._weighting, source_spec))

    def epoch(self, n: int, start: int = 0) -> Iterator[Batch]:
        weighting = self._weighting
        for x, y, sample_weight in self.source.epoch(n, start):
            yield x, y, weighting(y, sample_weight)

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> Feeder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- position --------------------------------------------------------------
    def seek(self, epoch: int, batch: int = 0) -> None:
        """Make the next pass start at ``batch`` of ``epoch`` (used to resume)."""
        self._next_epoch, self._start, self._stream = epoch, batch, None
        self._native_stream = None

    def trained_position(self, trained: int) -> tuple[int, int]:
        """``(epoch, batch)`` to resume at after ``trained`` batches of the current pass.

        Why from Keras' count: prefetching runs ahead of training, so what was
        *fetched* is not what was *trained*; the caller counts trained batches.
        """
        if self._steps is not None:
            raise ValueError(
                "Resuming needs passes that are whole epochs, but this feeder has "
                f"steps_per_epoch={self._steps}. Use Keras' fit(steps_per_epoch=...) instead."
            )
        epoch, start = self._pass_start
        batch = start + trained
        total = self.num_batches
        return (epoch + 1, 0) if total is not None and batch >= total else (epoch, batch)

    def fingerprint(self) -> dict[str, Any]:
        """What a saved position is only valid for: the data's shape of batches and its seed."""
        source = self.source
        return {
            "kind": self.kind,
            "num_batches": self.num_batches,
            "batch_size": getattr(source, "batch_size", None),
            "num_samples": getattr(source, "num_samples", None),
            "seed": getattr(source, "seed", None),
        }

    @property
    def position(self) -> tuple[int, int]:
        """``(epoch, batch)`` where the next pass will start."""
        return self._next_epoch, self._start

    def __iter__(self) -> Iterator[Batch]:
        """The batches of the next pass (an epoch, or ``steps_per_epoch`` batches)."""
        if self._steps is None:
            return self.epoch(*self._claim_pass())
        return self._steps_pass(self._steps)

    def _steps_pass(self, steps: int) -> Iterator[Batch]:
        if self._stream is None:
            self._stream = self._endless()
        for _ in range(steps):
            yield next(self._stream)

    def _endless(self) -> Iterator[Batch]:
        served, steps = 0, self._steps or 1
        for n in itertools.count(self._next_epoch):
            if served and getattr(self.source, "single_pass", False):
                raise ValueError(
                    f"`steps_per_epoch={steps}` needs more batches than the single-pass "
                    f"{self.kind!r} source has: it ran out after {served} batches, during pass "
                    f"{served // steps + 1} (steps_per_epoch * epochs must be at most "
                    f"{served}). Pass a callable that returns a fresh iterator (restarted every "
                    "epoch), or lower steps_per_epoch or epochs."
                )
            start, self._start = self._start, 0
            self._next_epoch = n + 1
            for batch in self.epoch(n, start):
                served += 1
                yield batch

    # -- derived feeders -----------------------------------------------------
    def split(self, at: int | float) -> tuple[Feeder, Feeder]:
        """Split off the last ``at`` samples (or fraction) as validation data, before shuffling.

        The validation feeder keeps ``sample_weight`` but not ``class_weight``,
        as Keras does with ``validation_split``.
        """
        split = getattr(self.source, "split", None)
        if split is None:
            raise TypeError(
                f"`split` is not supported by {self.kind!r} sources "
                f"({type(self.source).__name__}). Pass validation_data instead."
            )
        first, second = split(at)
        train = Feeder(
            first, class_weight=self._class_weight, steps_per_epoch=self._steps, kind=self.kind
        )
        return train, Feeder(second, kind=self.kind)

    def bind(self, model: Any) -> Feeder:
        """Check dict keys and list lengths against ``model``'s inputs and outputs.

        Also lets ``class_weight`` be keyed by output name when ``y`` is a list.

        Raises:
            ValueError: a key is unknown or missing, or a list has the wrong length.
        """
        spec = self.source.spec
        inputs = [t.name for t in getattr(model, "inputs", None) or []]
        outputs = list(getattr(model, "output_names", None) or [])
        for part, names, arg, kind in (
            (spec.x, inputs, "x", "input"),
            (spec.y, outputs, "y", "output"),
        ):
            if not names or part is None:
                continue
            check_names(part, names, arg, kind)
            if isinstance(part, list | tuple) and len(part) != len(names):
                raise ValueError(
                    f"`{arg}` is a list of {len(part)} arrays but the model has {len(names)} "
                    f"{kind}s {names}. Give one array per {kind}, in order, or a dict by name."
                )
        if isinstance(spec.y, list | tuple) and outputs_are_a_dict(model):
            raise ValueError(
                f"`y` is a list, but the model's outputs are a dict {outputs}: Keras matches a "
                "list to them in sorted-name order, not the order they were built in. Pass y "
                "as a dict keyed by output name."
            )
        if spec.sample_weight is not None and outputs:
            check_names(spec.sample_weight, outputs, "sample_weight", "output")
        self._weighting = Weighting(self._class_weight, spec.y, outputs or None)
        return self

    # -- Keras hand-off (DataAdapter) ------------------------------------------
    def as_dataset(self) -> Any:
        """A ``tf.data.Dataset`` of the batches, one epoch per iteration, with the exact spec.

        Sources that can build batches with TF ops (``source.as_dataset``) do so;
        the others are wrapped with ``from_generator``. Either way, each
        iteration claims the next epoch from this feeder's counter.
        """
        tf = require_tf("Feeder.as_dataset()")
        native = getattr(self.source, "as_dataset", None)
        if native is not None:
            dataset = self._native_dataset(native)
            if dataset is not None:
                self._timing.path = "native"
                return dataset
        signature = self.spec.to_tf()
        dataset = tf.data.Dataset.from_generator(self._keras_pass, output_signature=signature)
        # Python makes the next batches while the model trains on this one, as Keras does.
        return dataset.prefetch(tf.data.AUTOTUNE)

    def _native_dataset(self, native: Any) -> Any:
        """The source's own TF pipeline, weighted with TF ops (NOTE [ TF weighting ]).

        With ``steps_per_epoch``, every pass takes its batches from one live
        iterator over the epochs, so a pass continues where the last one stopped,
        as on the NumPy path; :meth:`seek` drops that iterator.
        """
        import tensorflow as tf

        dataset = native(self._claim_pass)
        if dataset is None:
            return None
        weigh = tf_weighting(self._weighting)
        if weigh is not None:
            dataset = dataset.map(weigh, num_parallel_calls=tf.data.AUTOTUNE)
            dataset = dataset.prefetch(tf.data.AUTOTUNE)
        if self._steps is None:
            return dataset
        if self._native_stream is None:
            self._native_stream = iter(dataset.repeat())
        stream = self._native_stream
        take = tf.autograph.experimental.do_not_convert(lambda _: stream.get_next())
        return tf.data.Dataset.range(self._steps).map(take)

    def _claim_pass(self) -> tuple[int, int]:
        """``(epoch, start)`` of the next pass, advancing the counter."""
        n, start = self._next_epoch, self._start
        self._next_epoch, self._start = n + 1, 0
        self._pass_start = (n, start)
        return n, start

    def _keras_pass(self) -> Iterator[tuple[Tree, ...]]:
        spec = self.source.spec
        if any(isinstance(part, list) for part in (spec.x, spec.y, spec.sample_weight)):
            yield from (tuple(lists_to_tuples(part) for part in batch) for batch in self._tuples())
        else:
            yield from self._tuples()

    def _tuples(self) -> Iterator[tuple[Tree, ...]]:
        # NOTE [ timing the Python path ]: the seconds spent in next() on the source
        # are what training waits for each batch (behind as_dataset()'s prefetch:
        # what producing it cost); DataWaitMonitor reads them via pipeline_stats().
        timing, batches, clock = self._timing, iter(self), time.perf_counter
        timing.path, expected, produced = "python", self.num_batches, 0
        while True:
            started = clock()
            try:
                x, y, sample_weight = next(batches)
            except StopIteration:
                if produced != expected:
                    timing.end_pass(self.source)
                return
            timing.wait_s += clock() - started
            timing.batches += 1
            produced += 1
            if produced == expected:
                timing.end_pass(self.source)
            if sample_weight is not None:
                yield (x, y, sample_weight)
            elif y is not None:
                yield (x, y)
            else:
                yield (x,)

    def pipeline_stats(self) -> dict[str, Any]:
        """Counters of the batches Keras took through Python, for :class:`~feeders.callbacks.DataWaitMonitor`.

        Returns:
            ``path``: ``"python"`` once a batch went through Python, ``"native"``
            when ``as_dataset()`` handed Keras the source's own tf.data pipeline
            (nothing is timed then), ``None`` before either. ``batches`` and
            ``wait_s``: batches produced on the Python path so far and the
            seconds spent in ``next()`` on the source for them (cumulative: take
            differences). ``passes``: passes that ran to their end. ``pool``: the
            source's worker-pool counters (:attr:`feeders.workers.WorkerPool.stats`)
            at the end of the last such pass, ``None`` without a pool.
        """
        return self._timing.as_dict()

    def get_tf_dataset(self) -> Any:
        return self.as_dataset()

    def get_numpy_iterator(self) -> Iterator[tuple[Tree, ...]]:
        return self._backend_pass()

    def get_jax_iterator(self) -> Iterator[tuple[Tree, ...]]:
        """The next pass, put on the JAX device one step ahead (:mod:`feeders.backends`)."""
        from feeders.backends.jax_batches import jax_batches

        return jax_batches(self._backend_pass())

    def get_torch_dataloader(self) -> Any:
        """A ``DataLoader``; each iteration is the next pass (:mod:`feeders.backends`)."""
        from feeders.backends.torch_loader import torch_dataloader

        return torch_dataloader(self._backend_pass)

    def _backend_pass(self) -> Iterator[tuple[Tree, ...]]:
        """The next pass, or the one Keras' symbolic build peeked at (NOTE in backends/passes.py)."""
        keeper = self.__dict__.get("_pass_keeper")
        if keeper is None:
            from feeders.backends.passes import PassKeeper

            keeper = PassKeeper(self._keras_pass, lambda: self.position, lambda: self.num_batches)
            self.__dict__["_pass_keeper"] = keeper
        return keeper.next_pass()

    @property
    def batch_size(self) -> int | None:
        return getattr(self.source, "batch_size", None)

    @property
    def has_partial_batch(self) -> bool:
        return bool(getattr(self.source, "partial_batch_size", None))

    @property
    def partial_batch_size(self) -> int | None:
        return getattr(self.source, "partial_batch_size", None)

    def __repr__(self) -> str:
        return (
            f"Feeder(kind={self.kind!r}, num_batches={self.num_batches}, "
            f"position={self.position}, spec={_describe(self.spec)})"
        )

    def distribute(self, service: str, **options: Any) -> Any:
        """Read these batches from a tf.data service cluster; see :func:`feeders.distributed.distribute`."""
        from feeders.distributed import distribute

        return distribute(self, service, **options)


class _PythonPath:
    """What :meth:`Feeder.pipeline_stats` reports; updated by the thread that runs the pass."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.batches = 0
        self.wait_s = 0.0
        self.passes = 0
        self.pool: dict[str, Any] | None = None

    def end_pass(self, source: Source) -> None:
        # Read now: behind a prefetch the next pass may start before anyone asks.
        pool = getattr(source, "pool", None)
        self.passes += 1
        self.pool = None if pool is None else pool.stats

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "batches": self.batches,
            "wait_s": self.wait_s,
            "passes": self.passes,
            "pool": self.pool,
        }


def _check_steps(steps: Any, available: int | None) -> int | None:
    if steps is None:
        return None
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps <= 0:
        raise ValueError(
            f"`steps_per_epoch` must be a positive integer or None, but got steps_per_epoch={steps!r}."
        )
    if available is not None and steps > available:
        raise ValueError(
            f"`steps_per_epoch` must be at most the {available} batches the source has, but got "
            f"steps_per_epoch={steps}. Lower it (each epoch continues where the last one "
            "stopped), or repeat the data (e.g. ds.repeat()) for longer epochs."
        )
    return int(steps)


def _weight_spec(weighting: Weighting, spec: BatchSpec) -> Tree:
    """The weights' spec, found by weighting an empty batch of the target's shape."""

    def empty(leaf: ArraySpec) -> np.ndarray:
        return np.zeros((0, *(1 if d is None else d for d in leaf.shape[1:])), leaf.dtype)

    y = map_tree(empty, spec.y)
    sample_weight = None if spec.sample_weight is None else map_tree(empty, spec.sample_weight)
    return BatchSpec.of((y, None, weighting(y, sample_weight))).sample_weight


def _describe(spec: BatchSpec) -> str:
    parts = {"x": spec.x, "y": spec.y, "sample_weight": spec.sample_weight}
    return ", ".join(
        f"{name}: {[leaf.describe() for leaf in flatten(tree)]}"
        for name, tree in parts.items()
        if tree is not None
    )
