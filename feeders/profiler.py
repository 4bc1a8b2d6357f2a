"""Profile the user's own input pipeline: which worker setting feeds it fastest, by measurement.

Why measure rather than advise: whether threads, processes or no workers at
all win depends on the source (does its ``__getitem__`` hold the GIL, sleep on
I/O, or just slice memory) and on the machine, and the honest answer is a
side-by-side timing. :func:`profile` builds the same source with
``workers=0``, threads and processes at a few worker counts, times each within
a share of a time budget (after its first batch, which pays for starting the
workers), and recommends the fastest with its measured gain over
``workers=0`` (or ``workers=0`` itself when nothing beats it by
:data:`MIN_GAIN`). Given a model, a short ``fit`` of workers=0 and of the
recommendation measures the fraction of step time spent waiting for data
(:class:`~feeders.monitor.DataWaitMonitor`).

A kind that takes no worker options (arrays, ``tf.data``) refuses them with a
``TypeError`` at ``adapt``; those settings are reported as not applicable.
``feeders bench --feeder package.module:function`` is this module's command.
"""

from __future__ import annotations

import inspect
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MIN_GAIN", "Profile", "Trial", "profile"]

MIN_GAIN = 1.15
"""A setting with workers is recommended only when it is at least this much faster."""
KNOBS = ("workers", "use_multiprocessing")
Config = dict[str, Any]


@dataclass(frozen=True)
class Trial:
    """One worker setting, timed; ``error`` says why it could not run."""

    config: Config
    batches: int = 0
    seconds: float = 0.0
    first_batch_s: float = 0.0
    cpu_s: float = 0.0
    samples: int = 0
    images: bool = False
    error: str | None = None

    @property
    def label(self) -> str:
        """``workers=0``, ``workers=2 (threads)``, ``workers=2, use_multiprocessing=True``."""
        if self.config.get("as_built"):
            return "the feeder as built"
        workers = self.config.get("workers", 0)
        if workers == 0:
            return "workers=0"
        if self.config.get("use_multiprocessing"):
            return f"workers={workers}, use_multiprocessing=True"
        return f"workers={workers} (threads)"

    @property
    def batches_per_s(self) -> float:
        return self.batches / self.seconds if self.batches and self.seconds > 0 else math.nan

    @property
    def images_per_s(self) -> float:
        return self.samples / self.seconds if self.images and self.seconds > 0 else math.nan

    @property
    def cpu_ms_per_batch(self) -> float:
        return 1000 * self.cpu_s / self.batches if self.batches else math.nan


@dataclass(frozen=True)
class Profile:
    """Every trial, the recommended one, and its gain over ``workers=0``."""

    trials: list[Trial]
    recommended: Trial
    baseline: Trial
    data_wait: dict[str, float] = field(default_factory=dict)
    """Data-wait fraction of a short ``fit`` per trial label (given a model)."""

    @property
    def gain(self) -> float:
        return self.recommended.batches_per_s / self.baseline.batches_per_s

    @property
    def recommendation(self) -> str:
        """E.g. ``"workers=2, use_multiprocessing=True: 2.9x workers=0"``."""
        if self.recommended is self.baseline:
            others = [t for t in self.trials if t is not self.baseline and t.error is None]
            best = max((t.batches_per_s for t in others), default=math.nan)
            why = (
                "no other setting applies to this source"
                if not others
                else f"the best other setting is {best / self.baseline.batches_per_s:.2f}x"
            )
            return f"workers=0 ({why}; below {MIN_GAIN}x is not worth the workers)"
        return f"{self.recommended.label}: {self.gain:.1f}x workers=0"

    def __str__(self) -> str:
        from feeders.bench_report import render_profile

        return render_profile(self)


def profile(
    source: Any,
    y: Any = None,
    *,
    model: Any = None,
    budget_s: float = 30.0,
    worker_counts: list[int] | None = None,
    fit_steps: int = 20,
    **adapt_options: Any,
) -> Profile:
    """Time ``source`` through ``feeders.adapt`` at each worker setting and recommend one.

    Args:
        source: anything :func:`feeders.adapt` accepts, a :class:`~feeders.Feeder`
            (timed as built: one setting), or a function returning either that
            takes ``workers`` and ``use_multiprocessing`` keywords (called once
            per setting).
        y, adapt_options: passed to ``adapt`` with each setting (except the knobs).
        model: a compiled Keras model: adds a short ``fit`` per compared setting
            and its data-wait fraction.
        budget_s: seconds for the whole profile, shared between the settings (with
            a model, 30% of it is kept for the fits). Each setting still gets
            its first batch and three more, so a budget smaller than that is
            overrun rather than a setting left unmeasured.
        worker_counts: worker counts to try (default: 2, 4 and the core count).
        fit_steps: batches per short ``fit``.

    Returns:
        A :class:`Profile`; ``str()`` of it is the table and the recommendation.

    Raises:
        ValueError: ``budget_s`` is not positive, or ``workers=0`` itself fails.
    """
    if not budget_s > 0:
        raise ValueError(f"`budget_s` must be positive seconds, but got budget_s={budget_s!r}.")
    for knob in KNOBS:
        if knob in adapt_options:
            raise ValueError(
                f"`{knob}` is what profile() varies, but got {knob}={adapt_options[knob]!r}. "
                "Leave it out (pass worker_counts=[...] to choose the counts)."
            )
    build = _builder(source, y, adapt_options)
    owned = build is not None  # feeders built here are closed here; the user's own is not
    configs = _configs(worker_counts) if owned else [{"as_built": True}]
    build = build or _as_given(source)
    deadline = time.perf_counter() + budget_s * (0.7 if model is not None else 1.0)
    trials: list[Trial] = []
    for position, config in enumerate(configs):
        share = (deadline - time.perf_counter()) / (len(configs) - position)
        trials.append(_time(build, config, max(share, 0.5), close=owned))
    baseline = trials[0]
    if baseline.error is not None:
        raise ValueError(f"the source failed with workers=0: {baseline.error}")
    fastest = max(
        (t for t in trials if t.error is None), key=lambda t: t.batches_per_s, default=baseline
    )
    recommended = (
        fastest if fastest.batches_per_s >= MIN_GAIN * baseline.batches_per_s else baseline
    )
    waits = {}
    if model is not None:
        for trial in [baseline] if recommended is baseline else [baseline, recommended]:
            waits[trial.label] = _data_wait(build(trial.config), model, fit_steps, close=owned)
    return Profile(trials, recommended, baseline, waits)


def _configs(worker_counts: list[int] | None) -> list[Config]:
    counts = worker_counts or sorted({2, 4, os.cpu_count() or 1})
    configs: list[Config] = [{}]  # workers=0: the kind's default, so kinds without workers run
    for processes in (False, True):
        configs += [{"workers": n, "use_multiprocessing": processes} for n in counts if n > 0]
    return configs


def _builder(source: Any, y: Any, options: Config) -> Callable[[Config], Any] | None:
    """How to build the source at a setting; None when it is a Feeder, fixed as built."""
    from feeders.dispatch import adapt
    from feeders.feeder import Feeder

    if isinstance(source, Feeder):
        return None
    if callable(source) and takes_worker_options(source):
        baseline = {"workers": 0, "use_multiprocessing": False}  # not the function's defaults
        return lambda config: adapt(source(**(config or baseline)), y, **options)
    return lambda config: adapt(source, y, **options, **config)


def takes_worker_options(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` accepts ``workers`` and ``use_multiprocessing`` (or ``**kwargs``)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    names = {p.name for p in parameters}
    return set(KNOBS) <= names or any(p.kind is p.VAR_KEYWORD for p in parameters)


def _as_given(feeder: Any) -> Callable[[Config], Any]:
    return lambda config: feeder


def _time(build: Callable[[Config], Any], config: Config, share_s: float, *, close: bool) -> Trial:
    """Batches until ``share_s`` is spent (at least 3 after the first), timed after the first."""
    started = time.perf_counter()
    try:
        feeder = build(config)
    except TypeError as err:  # the kind refuses worker options
        return Trial(config, error=f"not applicable: {err}")
    try:
        batches = _batches(feeder)
        x = next(batches)[0]
        first = time.perf_counter() - started
        leaf = x if isinstance(x, np.ndarray) else np.asarray(next(iter(_leaves(x))))
        images = leaf.ndim == 4
        cpu_before, clock = _cpu_s(), time.perf_counter()
        count = samples = 0
        while count < 3 or time.perf_counter() - started < share_s:
            x = next(batches)[0]
            count += 1
            samples += len(next(iter(_leaves(x))))
        seconds = time.perf_counter() - clock
        cpu = _cpu_s() - cpu_before
    except Exception as err:  # a failing setting is a row, not the end of the profile
        return Trial(config, error=f"failed: {type(err).__name__}: {err}")
    finally:
        if close:
            feeder.close()
    return Trial(config, count, seconds, first, max(cpu, 0.0), samples, images)


def _batches(feeder: Any) -> Iterator[Any]:
    """The feeder's batches, epoch after epoch, without end."""
    n = 0
    while True:
        produced = False
        for batch in feeder.epoch(n):
            produced = True
            yield batch
        if not produced:
            raise ValueError("the source produced no batch in an epoch")
        n += 1


def _leaves(x: Any) -> Iterator[Any]:
    if isinstance(x, dict):
        for value in x.values():
            yield from _leaves(value)
    elif isinstance(x, list | tuple):
        for value in x:
            yield from _leaves(value)
    else:
        yield x


def _cpu_s() -> float:
    """CPU seconds of this process and its live children (worker processes), when psutil is here."""
    times = os.times()
    total = times.user + times.system
    try:
        import psutil
    except ImportError:
        return total + times.children_user + times.children_system
    for child in psutil.Process().children(recursive=True):
        try:
            used = child.cpu_times()
        except psutil.Error:
            continue
        total += used.user + used.system
    return total


def _data_wait(feeder: Any, model: Any, steps: int, *, close: bool) -> float:
    from feeders.monitor import DataWaitMonitor

    monitor = DataWaitMonitor(feeder)
    steps = min(steps, feeder.num_batches or steps)
    try:
        model.fit(feeder, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[monitor])
    finally:
        if close:
            feeder.close()
    return float(monitor.epochs[-1]["data_wait_fraction"]) if monitor.epochs else math.nan
