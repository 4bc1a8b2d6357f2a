"""The feeder contract (:class:`Source`) and the :class:`Feeder` every source is wrapped in.

A *source* knows how to make the batches of epoch ``n`` (which samples, in which
order, fetched how). The :class:`Feeder` adds what is the same for every source:
weights, the Keras hand-off (``fit``/``evaluate``/``predict`` take it directly),
``as_dataset()``, ``split()``, ``bind(model)`` and the epoch counter that makes
each pass over the data a new, seeded epoch.
"""

from __future__ import annotations

import functools
import itertools
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from feeders._tf import require_tf
from feeders.capabilities import HasPool, InOrder, NativeTF, Sharded, SinglePass, Splittable
from feeders.errors import from_tf_error
from feeders.keras_glue import (
    DataAdapter,
    KerasCall,
    KerasHandOff,
    building_the_model,
    outputs_are_a_dict,
)
from feeders.rescaling import numpy_rescaled, rescale_of, tf_rescaled
from feeders.structure import (
    ArraySpec,
    Batch,
    BatchSpec,
    Tree,
    check_names,
    composite_handoff,
    flatten,
    lists_to_tuples,
    map_tree,
)
from feeders.weights import Weighting, check_class_weight_coverage, tf_weighting


@runtime_checkable
class Source(Protocol):
    """What a source kind implements; plug-ins need not inherit from anything.

    ``epoch(n, start)`` must be deterministic for a given seed and ``n`` (a
    different order per epoch when shuffling), and start at batch ``start`` so a
    crashed run can resume mid-epoch. Optional abilities are the Protocols of
    :mod:`feeders.capabilities` (``epoch_in_order``, ``split``, ``as_dataset``,
    ``service_graph``, ``pool``); optional attributes: ``batch_size``,
    ``partial_batch_size``, ``seed``.
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
        """The batches of epoch ``n`` from batch ``start`` on, as NumPy ``(x, y, sample_weight)``.

        A leaf whose spec is sparse or ragged may be a ``SparseRows``/``RaggedRows``
        (NOTE [ sparse and ragged batches ], in :mod:`feeders.sources.array_likes`).
        """
        ...

    def close(self) -> None:
        """Release workers, files and memory; idempotent."""
        ...


@dataclass(frozen=True)
class _Mode:
    """How one pass reads the source.

    ``training``: the pass is the next epoch (it advances :attr:`Feeder.position`);
    otherwise it is an inference pass (``predict``, ``evaluate``, validation):
    epoch 0 in natural order, the position untouched. ``shuffle=False``: the
    natural order. ``weighting=None``: the feeder's own.
    """

    training: bool = True
    shuffle: bool = True
    weighting: Weighting | None = None


TRAINING = _Mode()
INFERENCE = _Mode(training=False, shuffle=False)


class Feeder(KerasHandOff):
    """A source made ready for Keras: weighted, checked, counted.

    Pass it to ``model.fit(feeder)``, ``validation_data=feeder``,
    ``evaluate(feeder)`` or ``predict(feeder)``. Each pass ``fit`` trains on is
    the next epoch of the source (``epoch(0)``, ``epoch(1)``, ...), so shuffling
    is reseeded per epoch and reproducible. ``predict``, ``evaluate`` and
    ``fit``'s validation read the data in order, as Keras does, and leave the
    training position alone (NOTE [ which pass Keras wants ], in
    :mod:`feeders.keras_glue`). ``fit(class_weight=...)`` weights the training
    pass as ``adapt(class_weight=...)`` would; ``fit(shuffle=False)`` trains on
    the epochs in natural order.

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
        self._outputs: list[str] | None = None
        self._failure: BaseException | None = None  # raised while making a batch for Keras

    # -- the Source contract -------------------------------------------------
    @property
    def num_batches(self) -> int | None:
        return self._steps if self._steps is not None else self.source.num_batches

    @property
    def spec(self) -> BatchSpec:
        return self._spec_for(self._weighting)

    def epoch(self, n: int, start: int = 0, *, shuffle: bool = True) -> Iterator[Batch]:
        """Epoch ``n`` from batch ``start``, weighted; ``shuffle=False``: in natural order.

        NumPy batches: sparse and ragged leaves are made dense (NOTE [ sparse and
        ragged batches ], in :mod:`feeders.sources.array_likes`).
        """
        batches = self._weighted(self._source_epoch(n, start, shuffle=shuffle), self._weighting)
        convert = composite_handoff(self.source.spec, to="numpy")
        return batches if convert is None else _converted(batches, convert)

    def _source_epoch(
        self, n: int, start: int, *, shuffle: bool = True, counts: bool = True
    ) -> Iterator[Batch]:
        source = self.source
        if shuffle and counts:
            return source.epoch(n, start)
        if isinstance(source, InOrder):
            return source.epoch_in_order(n, start, counts=counts)
        return source.epoch(n, start)

    @staticmethod
    def _weighted(batches: Iterator[Batch], weighting: Weighting) -> Iterator[Batch]:
        for x, y, sample_weight in batches:
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
            **_shard_fingerprint(source),
        }

    @property
    def position(self) -> tuple[int, int]:
        """``(epoch, batch)`` where the next pass will start."""
        return self._next_epoch, self._start

    def __iter__(self) -> Iterator[Batch]:
        """The batches of the next pass (an epoch, or ``steps_per_epoch`` batches)."""
        return self._pass(TRAINING)

    def _pass(self, mode: _Mode) -> Iterator[Batch]:
        """The batches of the next pass Keras (or a user) makes, read as ``mode`` says."""
        weighting = mode.weighting or self._weighting
        if not mode.training:
            return self._weighted(self._source_epoch(0, 0, shuffle=False, counts=False), weighting)
        if self._steps is None:
            n, start = self._claim_pass()
            return self._weighted(self._source_epoch(n, start, shuffle=mode.shuffle), weighting)
        return self._weighted(self._steps_pass(self._steps, mode.shuffle), weighting)

    def _steps_pass(self, steps: int, shuffle: bool) -> Iterator[Batch]:
        if self._stream is None:
            self._stream = self._endless(shuffle)
        for _ in range(steps):
            yield next(self._stream)

    def _endless(self, shuffle: bool) -> Iterator[Batch]:
        served, steps = 0, self._steps or 1
        single_pass = isinstance(self.source, SinglePass) and self.source.single_pass
        for n in itertools.count(self._next_epoch):
            if served and single_pass:
                raise ValueError(
                    f"`steps_per_epoch={steps}` needs more batches than the single-pass "
                    f"{self.kind!r} source has: it ran out after {served} batches, during pass "
                    f"{served // steps + 1} (steps_per_epoch * epochs must be at most "
                    f"{served}). Pass a callable that returns a fresh iterator (restarted every "
                    "epoch), or lower steps_per_epoch or epochs."
                )
            start, self._start = self._start, 0
            self._next_epoch = n + 1
            for batch in self._source_epoch(n, start, shuffle=shuffle):
                served += 1
                yield batch

    # -- derived feeders -----------------------------------------------------
    def split(self, at: int | float) -> tuple[Feeder, Feeder]:
        """Split off the last ``at`` samples (or fraction) as validation data, before shuffling.

        The validation feeder keeps ``sample_weight`` but not ``class_weight``,
        as Keras does with ``validation_split``.
        """
        if not isinstance(self.source, Splittable):
            raise TypeError(
                f"`split` is not supported by {self.kind!r} sources "
                f"({type(self.source).__name__}). Pass validation_data instead."
            )
        first, second = self.source.split(at)
        train = Feeder(
            first, class_weight=self._class_weight, steps_per_epoch=self._steps, kind=self.kind
        )
        return train, Feeder(second, kind=self.kind)

    def shard(self, index: int, count: int) -> Feeder:
        """A feeder of process ``index`` of ``count``'s part of every epoch (:mod:`feeders.sharding`).

        Same data, seed, ``class_weight`` and ``steps_per_epoch``; ``batch_size`` stays
        per process. Every process must have adapted the same data with the same
        ``seed=`` (a drawn seed differs per process, and the shards would overlap);
        ``feeders.adapt(..., shard=)`` checks that and builds the source once.
        """
        from feeders.sharding import Shard, shard_source

        sharded = shard_source(self.source, Shard(index, count))
        return Feeder(
            sharded, class_weight=self._class_weight, steps_per_epoch=self._steps, kind=self.kind
        )

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
        self._outputs = outputs or None
        self._weighting = Weighting(self._class_weight, spec.y, self._outputs)
        return self

    # -- Keras hand-off (DataAdapter) ------------------------------------------
    def for_keras(self, call: KerasCall) -> DataAdapter:
        """The adapter for one Keras call (see :mod:`feeders.keras_glue`).

        Raises:
            ValueError: ``y``, ``sample_weight`` or ``batch_size`` were given to
                the Keras method next to the feeder (they belong to ``adapt``),
                or ``class_weight`` was given to both ``fit`` and ``adapt``.
        """
        method = call.method or "fit"
        for arg, value in (
            ("y", call.y),
            ("sample_weight", call.sample_weight),
            ("batch_size", call.batch_size),
        ):
            if value is not None:
                where = "feeders.adapt(x, y)" if arg == "y" else f"feeders.adapt(x, y, {arg}=...)"
                raise ValueError(
                    f"`{arg}` is not used when x is a feeder, but got {arg}={_shown(value)} in "
                    f"model.{method}(). Pass it to {where} instead: the feeder's batches hold it."
                )
        if call.method is None:
            return self
        if not call.training:
            return _KerasPass(self, INFERENCE, call.model)
        weighting = None
        if call.class_weight is not None:
            if self._class_weight is not None:
                raise ValueError(
                    "`class_weight` was given twice: to model.fit() and to feeders.adapt(). "
                    "Pass it to one of them."
                )
            weighting = Weighting(call.class_weight, self.source.spec.y, self._outputs)
            check_class_weight_coverage(call.class_weight, self.source)
        mode = _Mode(training=True, shuffle=call.shuffle, weighting=weighting)
        return _KerasPass(self, mode, call.model)

    def keras_error(self, err: BaseException) -> BaseException | None:
        """What to raise instead of ``err`` from inside a Keras pass: the recorded exception.

        On the TensorFlow backend an exception raised while making a batch
        reaches Keras as a graph error; the original was recorded here (NOTE
        [ the failure behind a graph error ]). An assertion of feeders' own TF
        ops becomes the ``ValueError`` it stands for.
        """
        failure, self._failure = self._failure, None
        if failure is not None:
            return failure
        return from_tf_error(err)

    def as_dataset(self) -> Any:
        """A ``tf.data.Dataset`` of the batches, one pass per iteration, with the exact spec.

        Sources that can build batches with TF ops (:class:`~feeders.capabilities.NativeTF`)
        do so; the others are wrapped with ``from_generator``. Either way, each
        iteration claims the next epoch from this feeder's counter.
        """
        return self._tf_dataset(TRAINING)

    def _tf_dataset(self, mode: _Mode) -> Any:
        tf = require_tf("Feeder.as_dataset()")
        if isinstance(self.source, NativeTF):
            dataset = self._native_dataset(mode)
            if dataset is not None:
                self._timing.path = "native"
                return _owned_by(dataset, self)
        weighting = mode.weighting or self._weighting
        signature = self._spec_for(weighting).to_tf()
        # NOTE [ no strong reference from TF ]: TensorFlow keeps a generator's
        # function in a process-wide registry, beyond the dataset's life, so the
        # function holds the feeder weakly and the dataset object holds it
        # strongly: `adapt(x).as_dataset()` works alone, and after fit, once
        # Keras drops its dataset, `del feeder` frees the feeder (and the
        # workers and memory it owns).
        generator = functools.partial(_weak_pass, weakref.ref(self), mode)
        dataset = tf.data.Dataset.from_generator(generator, output_signature=signature)
        scale = rescale_of(self.source)
        if scale is not None:  # uint8 through Python, float32 in the graph
            dataset = tf_rescaled(dataset, scale)
        # Python makes the next batches while the model trains on this one, as Keras does.
        return _owned_by(dataset.prefetch(tf.data.AUTOTUNE), self)

    def _native_dataset(self, mode: _Mode) -> Any:
        """The source's own TF pipeline, weighted with TF ops (NOTE [ TF weighting ]).

        With ``steps_per_epoch``, every pass takes its batches from one live
        iterator over the epochs, so a pass continues where the last one stopped,
        as on the NumPy path; :meth:`seek` drops that iterator.
        """
        import tensorflow as tf

        claim = _weak_claim(weakref.ref(self), mode.training)
        dataset = self.source.as_dataset(claim, shuffle=mode.shuffle)  # type: ignore[attr-defined]
        if dataset is None:
            return None
        weigh = tf_weighting(mode.weighting or self._weighting)
        if weigh is not None:
            dataset = dataset.map(weigh, num_parallel_calls=tf.data.AUTOTUNE)
            dataset = dataset.prefetch(tf.data.AUTOTUNE)
        if self._steps is None or not mode.training:
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

    def _spec_for(self, weighting: Weighting) -> BatchSpec:
        source_spec = self.source.spec
        if not weighting.active:
            return source_spec
        return BatchSpec(source_spec.x, source_spec.y, _weight_spec(weighting, source_spec))

    def _keras_pass(
        self, mode: _Mode = TRAINING, *, to: str = "numpy"
    ) -> Iterator[tuple[Tree, ...]]:
        """One pass as Keras takes batches: ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``.

        Sparse and ragged leaves become what Keras hands the consumer ``to`` (``"tf"``,
        ``"jax"`` or ``"numpy"``; NOTE [ sparse and ragged batches ], in
        :mod:`feeders.sources.array_likes`).

        NOTE [ the failure behind a graph error ]: an exception raised while
        making a batch is recorded before it propagates, because on the
        TensorFlow backend it reaches Keras as an ``UnknownError``;
        :meth:`keras_error` hands the original back at the ``fit`` boundary.
        """
        spec = self.source.spec
        if building_the_model():
            yield self._placeholder(mode)
            return
        self._failure = None  # one left by a pass nobody reported (e.g. outside Keras)
        tuples = self._tuples(mode)
        convert = composite_handoff(spec, to=to)
        if convert is not None:
            tuples = (tuple(convert(part) for part in batch) for batch in tuples)
        if any(isinstance(part, list) for part in (spec.x, spec.y, spec.sample_weight)):
            tuples = (tuple(lists_to_tuples(part) for part in batch) for batch in tuples)
        try:
            yield from tuples
        except BaseException as err:  # KeyboardInterrupt too: TF would turn it into a RuntimeError
            if not isinstance(err, GeneratorExit):
                self._failure = err
            raise

    def _placeholder(self, mode: _Mode) -> tuple[Tree, ...]:
        """Zeros of the pass's exact structure, dtypes and shapes (NOTE [ Keras' build peek ])."""
        rows = self.batch_size or 1

        def zeros(leaf: ArraySpec) -> np.ndarray:
            return np.zeros((rows, *(1 if d is None else d for d in leaf.shape[1:])), leaf.dtype)

        parts = self._spec_for(mode.weighting or self._weighting).parts()
        return tuple(lists_to_tuples(map_tree(zeros, part)) for part in parts)

    def _tuples(self, mode: _Mode) -> Iterator[tuple[Tree, ...]]:
        # NOTE [ timing the Python path ]: the seconds spent in next() on the source
        # are what training waits for each batch (behind as_dataset()'s prefetch:
        # what producing it cost); DataWaitMonitor reads them via pipeline_stats().
        timing, batches, clock = self._timing, self._pass(mode), time.perf_counter
        expected = self.num_batches if mode.training else self.source.num_batches
        timing.path, produced = "python", 0
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
        return self._numpy_pass(TRAINING)

    def get_jax_iterator(self) -> Iterator[tuple[Tree, ...]]:
        return self._jax_pass(TRAINING)

    def get_torch_dataloader(self) -> Any:
        return self._torch_loader(TRAINING)

    def _numpy_pass(self, mode: _Mode) -> Iterator[tuple[Tree, ...]]:
        """The next pass as NumPy; a :class:`~feeders.capabilities.Rescaled` source's ``x`` as float32."""
        scale = rescale_of(self.source)
        batches = self._keras_pass(mode)
        return batches if scale is None else numpy_rescaled(batches, scale)

    def _jax_pass(self, mode: _Mode) -> Iterator[tuple[Tree, ...]]:
        """The next pass, put on the JAX device one step ahead (:mod:`feeders.backends`)."""
        from feeders.backends.jax_batches import jax_batches

        return jax_batches(self._keras_pass(mode, to="jax"), rescale=rescale_of(self.source))

    def _torch_loader(self, mode: _Mode) -> Any:
        """A ``DataLoader``; each iteration is the next pass (:mod:`feeders.backends`)."""
        from feeders.backends.torch_loader import torch_dataloader

        make_pass = functools.partial(self._keras_pass, mode)
        return torch_dataloader(make_pass, rescale=rescale_of(self.source))

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


class _KerasPass(KerasHandOff):
    """The adapter one Keras call gets: the feeder, read as that call needs (a :class:`_Mode`).

    Why a separate object: ``fit`` builds one adapter for its training data and
    one for its validation data, and ``predict`` another, each read its own way,
    while position, workers and weights stay the feeder's.
    """

    def __init__(self, feeder: Feeder, mode: _Mode, model: Any = None) -> None:
        self.feeder = feeder
        self.mode = mode
        self.model = model  # whose tf.distribute strategy a sharded pass hands its dataset to

    def get_numpy_iterator(self) -> Iterator[tuple[Tree, ...]]:
        return self.feeder._numpy_pass(self.mode)

    def get_tf_dataset(self) -> Any:
        dataset = self.feeder._tf_dataset(self.mode)
        source = self.feeder.source
        if isinstance(source, Sharded) and source.process_shard is not None:
            from feeders.sharding_tf import per_worker_dataset

            return per_worker_dataset(dataset, self.model)
        return dataset

    def get_jax_iterator(self) -> Iterator[tuple[Tree, ...]]:
        return self.feeder._jax_pass(self.mode)

    def get_torch_dataloader(self) -> Any:
        return self.feeder._torch_loader(self.mode)

    def keras_error(self, err: BaseException) -> BaseException | None:
        return self.feeder.keras_error(err)

    @property
    def num_batches(self) -> int | None:
        feeder = self.feeder
        return feeder.num_batches if self.mode.training else feeder.source.num_batches

    @property
    def batch_size(self) -> int | None:
        return self.feeder.batch_size

    @property
    def has_partial_batch(self) -> bool:
        return self.feeder.has_partial_batch

    @property
    def partial_batch_size(self) -> int | None:
        return self.feeder.partial_batch_size


def _converted(batches: Iterator[Batch], convert: Callable[[Tree], Tree]) -> Iterator[Batch]:
    for x, y, sample_weight in batches:
        yield (
            convert(x),
            None if y is None else convert(y),
            None if sample_weight is None else convert(sample_weight),
        )


def _owned_by(dataset: Any, feeder: Feeder) -> Any:
    """``dataset``, keeping ``feeder`` alive for as long as it (NOTE [ no strong reference from TF ])."""
    dataset._feeders_owner = feeder
    return dataset


def _weak_pass(ref: weakref.ref[Feeder], mode: _Mode) -> Iterator[tuple[Tree, ...]]:
    """``feeder._keras_pass(mode)`` for a feeder held weakly (NOTE [ no strong reference from TF ])."""
    feeder = ref()
    if feeder is None:
        raise RuntimeError("The feeder behind this tf.data pipeline was garbage collected.")
    yield from feeder._keras_pass(mode, to="tf")


def _weak_claim(ref: weakref.ref[Feeder], training: bool) -> Callable[[], tuple[int, int]]:
    """The ``claim_pass`` a native pipeline calls per iteration; inference passes claim nothing."""

    def claim() -> tuple[int, int]:
        feeder = ref()
        if feeder is None:
            raise RuntimeError("The feeder behind this tf.data pipeline was garbage collected.")
        return feeder._claim_pass() if training else (0, 0)

    return claim


def _shard_fingerprint(source: Source) -> dict[str, int]:
    """A sharded position is a step of one process's part: valid only for that process split."""
    shard = source.process_shard if isinstance(source, Sharded) else None
    return {} if shard is None else {"process_index": shard.index, "process_count": shard.count}


def _shown(value: Any) -> str:
    """A value for an error message: its type and shape, never its contents."""
    if isinstance(value, int | float | str | bool):
        return repr(value)
    shape = getattr(value, "shape", None)
    return f"<{type(value).__name__}{'' if shape is None else f' shape {tuple(shape)}'}>"


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
        self.passes += 1
        self.pool = source.pool.stats if isinstance(source, HasPool) else None

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
