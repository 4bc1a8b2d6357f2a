"""Serve a feeder through tf.data service: decode on a pool of CPU hosts, train here.

Why tf.data service rather than a home-made one: TensorFlow already ships the dispatcher,
the workers, dynamic splits and fault-tolerant journaling. What it ships to a worker is a
dataset *graph*: Python functions behind ``from_generator``/``py_function`` stay in the
client process, and a real worker fails with "Could not find callback with key=pyfunc_0".
So :func:`distribute` builds, for each source kind that has one, a pure-TF graph of the
feeder's batches (class weights included, as TF ops), registers it once, and reads each
epoch as a new service job; sources made of Python code are refused up front. The graphs,
and why their order is what it is, are in :mod:`feeders.service_graph`.

NOTE [ bounded wait ]: when a worker dies, tf.data service waits, without limit, for a
worker to come back on the same address. Each pass here reads the service through a
cancellable ``get_next``; a watchdog cancels a wait longer than ``timeout`` seconds, and the
pass raises :class:`ServiceTimeoutError` naming the workers that do not answer. What is
lost or replayed when a worker dies (TensorFlow's rules): in ``distributed_epoch`` the
splits the dead worker held (its prefetched and in-flight batches) are lost for that epoch
and nothing is repeated (at most once); in ``parallel_epochs`` a worker that restarts
begins its epoch again from the start (its batches repeat; at least once).
"""

from __future__ import annotations

import contextlib
import itertools
import operator
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from feeders._tf import require_tf
from feeders.keras_glue import DataAdapter
from feeders.rescaling import rescale_of, tf_rescaled
from feeders.serve import DEFAULT_PROBE_TIMEOUT, answers, list_workers
from feeders.service_graph import NotServableError, ServiceGraph, service_graph
from feeders.structure import Tree, flatten
from feeders.weights import Weighting, tf_weighting

__all__ = [
    "PROCESSING_MODES",
    "DistributedFeeder",
    "NotServableError",
    "ServiceTimeoutError",
    "distribute",
]

PROCESSING_MODES = ("distributed_epoch", "parallel_epochs")
DEFAULT_TIMEOUT = 60.0  # seconds without a batch before the workers are probed


class ServiceTimeoutError(TimeoutError):
    """No batch came from the service within ``timeout`` seconds (NOTE [ bounded wait ]).

    Through ``model.fit`` it arrives as ``tf.errors.UnknownError`` whose message starts
    with ``ServiceTimeoutError:`` (TensorFlow re-wraps Python errors raised in a dataset).

    Attributes:
        dead_workers: the worker addresses that did not answer a probe.
    """

    def __init__(self, message: str, dead_workers: list[str]) -> None:
        super().__init__(message)
        self.dead_workers = dead_workers


# -- the client: one service job per pass, each wait bounded ----------------------------------
class DistributedFeeder(DataAdapter):  # type: ignore[misc]
    """A feeder's batches read from a tf.data service cluster; pass it to ``model.fit``.

    Each pass (a Keras epoch, or a ``for`` loop over it) is a new service job over the
    graph registered once by :func:`distribute`. Batches are ``(x,)``, ``(x, y)`` or
    ``(x, y, sample_weight)`` tuples, weighted on the workers.

    Attributes:
        feeder: the feeder served.
        service: the dispatcher's address.
        processing_mode: ``"distributed_epoch"`` or ``"parallel_epochs"``.
        dataset_id: the id the dispatcher gave the graph.
    """

    def __init__(
        self,
        feeder: Any,
        graph: ServiceGraph,
        *,
        service: str,
        processing_mode: str,
        job_name: str | None,
        timeout: float,
        probe_timeout: float,
        workers: int,
        compression: str | None,
    ) -> None:
        import tensorflow as tf

        self.feeder = feeder
        self.service = service
        self.processing_mode = processing_mode
        self.timeout = timeout
        self.probe_timeout = probe_timeout
        self._graph = graph
        self._workers = workers
        self.dataset_id = tf.data.experimental.service.register_dataset(
            service, graph.dataset, compression=compression
        )
        jobs = tf.data.experimental.service.from_dataset_id(
            processing_mode,
            service,
            self.dataset_id,
            element_spec=graph.dataset.element_spec,
            job_name=job_name,
        )
        scale = rescale_of(feeder.source)  # uint8 over the wire, float32 here (rescaling.py)
        self._jobs = jobs if scale is None else tf_rescaled(jobs, scale)
        self.element_spec = self._jobs.element_spec
        self._passes = 0

    def __iter__(self) -> Iterator[tuple[Tree, ...]]:
        """The batches of one pass (one service job), as NumPy ``(x, y[, sample_weight])``.

        In ``distributed_epoch``, the last, partial batch of each worker is joined with the
        others', so an epoch has the feeder's number of batches (NOTE [ service order ]).
        """
        batches = self._job()
        if self.processing_mode == "distributed_epoch":
            return _joined(batches, self._graph.batch_size)
        return batches

    def _job(self) -> Iterator[tuple[Tree, ...]]:
        import tensorflow as tf

        n, self._passes = self._passes, self._passes + 1
        iterator = iter(self._jobs)
        get_next = _CancellableGetNext(iterator, self.element_spec)
        with _Watchdog(self.timeout, get_next.cancel) as watchdog:
            for count in itertools.count():
                try:
                    with watchdog.waiting():
                        element = get_next()
                except tf.errors.OutOfRangeError:
                    return
                except tf.errors.CancelledError as err:
                    if not watchdog.fired:
                        raise
                    raise self._stalled(n, count) from err
                yield tf.nest.map_structure(lambda t: t.numpy(), element)

    def _stalled(self, n: int, count: int) -> ServiceTimeoutError:
        """Probe the dispatcher and every worker; say which do not answer and what to do."""
        waited = (
            f"No batch came from the tf.data service at {self.service} for {self.timeout:g}s "
            f"(pass {n}, after {count} batches)"
        )
        try:
            workers = list_workers(self.service, self.probe_timeout)
        except ConnectionError as err:
            return ServiceTimeoutError(f"{waited}, and {err}", [])
        if not workers:
            return ServiceTimeoutError(
                f"{waited}: the dispatcher has no workers. Start some: feeders serve worker "
                f"--dispatcher {self.service.split('://')[-1]} --port PORT.",
                [],
            )
        with ThreadPoolExecutor(min(16, len(workers))) as pool:
            alive = list(pool.map(lambda w: answers(w, self.probe_timeout), workers))
        dead = [w for w, ok in zip(workers, alive, strict=True) if not ok]
        if not dead:
            return ServiceTimeoutError(
                f"{waited}, yet all {len(workers)} workers answer: they are slow, not dead "
                "(a large graph to load, or batches slower than the timeout). Pass a larger "
                "timeout=, or add workers.",
                [],
            )
        lost = (
            "the splits it held are lost for this epoch (at most once)"
            if self.processing_mode == "distributed_epoch"
            else "a restarted worker starts its epoch again (its batches repeat)"
        )
        return ServiceTimeoutError(
            f"{waited}: worker(s) {', '.join(dead)} do not answer. tf.data service waits for a "
            f"lost worker to come back on the same address; in {self.processing_mode} mode "
            f"{lost}. Restart it on the same address (feeders serve worker --dispatcher "
            f"{self.service.split('://')[-1]} --port PORT --worker-address ADDRESS), or pass a "
            "larger timeout= to wait longer.",
            dead,
        )

    def close(self) -> None:
        """Nothing to release here: jobs end with their pass; the dispatcher keeps the graph."""

    # -- Keras hand-off (DataAdapter) ----------------------------------------------------------
    def get_tf_dataset(self) -> Any:
        import tensorflow as tf

        dataset = tf.data.Dataset.from_generator(self.__iter__, output_signature=self.element_spec)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def get_numpy_iterator(self) -> Iterator[tuple[Tree, ...]]:
        return iter(self)

    def get_jax_iterator(self) -> Iterator[tuple[Tree, ...]]:
        return iter(self)

    def get_torch_dataloader(self) -> Any:
        from feeders.backends.torch_loader import torch_dataloader

        return torch_dataloader(self.__iter__)

    @property
    def num_batches(self) -> int | None:
        """Batches per pass: the feeder's; in ``parallel_epochs``, times the workers that
        answered when it was distributed (Keras ends an epoch after this many)."""
        count = self._graph.num_batches
        if count is None or self.processing_mode == "distributed_epoch":
            return count
        return count * self._workers

    @property
    def batch_size(self) -> int | None:
        return self.feeder.batch_size  # type: ignore[no-any-return]

    @property
    def has_partial_batch(self) -> bool:
        return True

    @property
    def partial_batch_size(self) -> int | None:
        return None

    def __repr__(self) -> str:
        return (
            f"DistributedFeeder(service={self.service!r}, "
            f"processing_mode={self.processing_mode!r}, kind={self.feeder.kind!r})"
        )


def distribute(
    feeder: Any,
    service: str,
    processing_mode: str = "distributed_epoch",
    job_name: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
    compression: str | None = "AUTO",
) -> DistributedFeeder:
    """Serve ``feeder``'s batches from a tf.data service cluster (see the module docstring).

    Args:
        feeder: a :class:`~feeders.Feeder`, or anything :func:`feeders.adapt` accepts.
        service: the dispatcher, ``"grpc://host:port"`` or ``"host:port"``.
        processing_mode: ``"distributed_epoch"``: the workers share each epoch, every
            sample exactly once (at most once when a worker dies); ``"parallel_epochs"``:
            every worker produces a whole epoch (each sample once per worker, at least once).
        job_name: share each epoch's job with other clients using the same name.
        timeout: seconds to wait for a batch before probing the workers and raising
            :class:`ServiceTimeoutError` (NOTE [ bounded wait ]).
        probe_timeout: seconds the dispatcher, and each worker when probed, has to answer.
        compression: ``"AUTO"`` (TensorFlow's default, snappy) or ``None``. Float batches
            compress little; ``None`` saved ~12 ms of CPU per 32x200x200x3 batch here, which
            matters when the network is fast and the workers' CPUs are the bottleneck.

    Returns:
        A :class:`DistributedFeeder` for ``model.fit``/``evaluate``/``predict``.

    Raises:
        ValueError: a bad ``processing_mode``, ``timeout`` or ``service``, or a feeder made
            with ``steps_per_epoch``.
        ConnectionError: the dispatcher did not answer within ``probe_timeout``.
        NotServableError: the feeder's batches are made by Python code.
    """
    from feeders.dispatch import adapt

    tf = require_tf("feeders.distribute()")
    if processing_mode not in PROCESSING_MODES:
        raise ValueError(
            f"`processing_mode` must be one of {list(PROCESSING_MODES)}, but got "
            f"processing_mode={processing_mode!r}."
        )
    for value, arg in ((timeout, "timeout"), (probe_timeout, "probe_timeout")):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(
                f"`{arg}` must be a positive number of seconds, but got {arg}={value!r}."
            )
    if not isinstance(service, str) or ":" not in service.split("://")[-1]:
        raise ValueError(
            "`service` must be the dispatcher's address, 'grpc://host:port' or 'host:port', "
            f"but got service={service!r}."
        )
    feeder = adapt(feeder)
    if feeder.num_batches != feeder.source.num_batches:
        raise ValueError(
            f"`steps_per_epoch={feeder.num_batches}` is not applied through tf.data service: "
            "each pass is one service job over a whole epoch. Adapt without steps_per_epoch; "
            "fit(..., steps_per_epoch=k) with k at most the batches per epoch still works."
        )
    workers = list_workers(service, probe_timeout)  # the dispatcher answers, or ConnectionError
    graph = service_graph(feeder.source, feeder.position[0], processing_mode)
    dataset = graph.dataset
    weigh = tf_weighting(_weighting(feeder))
    if weigh is not None:
        dataset = dataset.map(weigh, num_parallel_calls=tf.data.AUTOTUNE)
    with ThreadPoolExecutor(max(1, min(16, len(workers)))) as pool:
        live = sum(pool.map(lambda w: answers(w, probe_timeout), workers))
    return DistributedFeeder(
        feeder,
        ServiceGraph(dataset.prefetch(tf.data.AUTOTUNE), graph.num_batches, graph.batch_size),
        service=service,
        processing_mode=processing_mode,
        job_name=job_name,
        timeout=float(timeout),
        probe_timeout=float(probe_timeout),
        workers=live,
        compression=compression,
    )


def _joined(batches: Iterator[tuple[Tree, ...]], size: int | None) -> Iterator[tuple[Tree, ...]]:
    """Pass full batches on; join partial ones (each worker's last) into full ones.

    A full batch has ``size`` rows, or, when unknown, as many as the largest batch so far.
    """
    import tensorflow as tf

    def rows(batch: tuple[Tree, ...]) -> int:
        return len(flatten(batch)[0])

    def part(batch: tuple[Tree, ...], which: slice) -> tuple[Tree, ...]:
        return tf.nest.map_structure(operator.itemgetter(which), batch)  # type: ignore[no-any-return]

    held: tuple[Tree, ...] | None = None
    full = size or 0
    for batch in batches:
        full = size or max(full, rows(batch))
        if rows(batch) >= full:
            yield batch
            continue
        held = batch if held is None else tf.nest.map_structure(_concat, held, batch)
        if rows(held) >= full:
            yield part(held, slice(None, full))
            held = part(held, slice(full, None)) if rows(held) > full else None
    if held is not None:
        yield held


def _concat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.concatenate([a, b])


def _weighting(feeder: Any) -> Weighting:
    """The feeder's class weighting (its rules, built once; applied here as TF ops)."""
    return feeder._weighting  # type: ignore[no-any-return]


class _CancellableGetNext:
    """``iterator.get_next()`` that another thread can cancel.

    Why TensorFlow internals: a blocked ``get_next`` on a service whose worker died never
    returns by itself, and the public ``CancellationManager`` context is one global shared by
    every thread (cancelling it would cancel Keras' train step too). Running the op with its
    own manager cancels only this wait.
    """

    def __init__(self, iterator: Any, spec: Any) -> None:
        import tensorflow as tf
        from tensorflow.python.eager import cancellation

        self._manager = cancellation.CancellationManager()
        self._resource = iterator._iterator_resource
        self._iterator = iterator  # keeps the resource alive
        self._spec = spec
        flat = tf.nest.flatten(spec)
        self._attrs = (
            "output_types",
            [s.dtype for s in flat],
            "output_shapes",
            [s.shape for s in flat],
        )
        self._count = len(flat)

    def __call__(self) -> Any:
        import tensorflow as tf
        from tensorflow.python.eager import context, execute

        flat = execute.execute_with_cancellation(
            b"IteratorGetNext",
            self._count,
            [self._resource],
            self._attrs,
            context.context(),
            self._manager,
        )
        return tf.nest.pack_sequence_as(self._spec, flat)

    def cancel(self) -> None:
        self._manager.start_cancel()


class _Watchdog:
    """Calls ``cancel`` once when a :meth:`waiting` block lasts longer than ``timeout``."""

    def __init__(self, timeout: float, cancel: Callable[[], None]) -> None:
        self._timeout = timeout
        self._cancel = cancel
        self._lock = threading.Condition()
        self._since: float | None = None
        self._closed = False
        self.fired = False
        self._thread = threading.Thread(target=self._run, name="feeders-watchdog", daemon=True)

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join()

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        with self._lock:
            self._since = time.monotonic()
            self._lock.notify()
        try:
            yield
        finally:
            with self._lock:
                self._since = None

    def _run(self) -> None:
        with self._lock:
            while not self._closed:
                if self._since is None:
                    self._lock.wait()
                    continue
                left = self._since + self._timeout - time.monotonic()
                if left <= 0:
                    self.fired = True
                    self._cancel()
                    return
                self._lock.wait(left)
