"""Shared timing helpers: interleaved repeats, min/median/max, JSON lines.

Why interleaved: on a noisy 2-core machine, timing A five times then B five
times measures the machine's mood; alternating A, B, A, B compares like with like.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any


def environment() -> dict[str, Any]:
    """The machine and library versions every figure is tied to."""
    versions = {}
    for name in ("feeders", "tensorflow", "keras", "numpy", "pillow", "torch"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "versions": versions,
    }


@dataclass
class Measurement:
    """Repeated timings of one configuration, turned into a rate."""

    name: str
    unit: str
    work: float
    config: dict[str, Any] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)

    @property
    def values(self) -> list[float]:
        return (
            [self.work / s for s in self.seconds]
            if self.unit.endswith("/s")
            else list(self.seconds)
        )

    def row(self, suite: str) -> dict[str, Any]:
        values = self.values
        return {
            "suite": suite,
            "name": self.name,
            "value": statistics.median(values),
            "unit": self.unit,
            "min": min(values),
            "median": statistics.median(values),
            "max": max(values),
            "repeats": len(values),
            "config": self.config,
            **environment(),
        }


def interleaved(
    runs: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Seconds per call of each function, alternating between them each round."""
    for fn in runs.values():
        for _ in range(warmup):
            fn()
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def emit(rows: Iterable[dict[str, Any]], out: Any = None) -> list[dict[str, Any]]:
    """Print each row as one JSON line (to ``out`` or stdout) and return them."""
    rows = list(rows)
    stream = out or sys.stdout
    for row in rows:
        stream.write(json.dumps(row, sort_keys=True) + "\n")
    stream.flush()
    return rows


def ratio_row(
    suite: str, name: str, numerator: dict[str, Any], denominator: dict[str, Any], target: str
) -> dict[str, Any]:
    """A derived figure: the median of one row over another, with the issue's target."""
    value = numerator["median"] / denominator["median"]
    return {
        "suite": suite,
        "name": name,
        "value": value,
        "unit": "ratio",
        "min": value,
        "median": value,
        "max": value,
        "repeats": min(numerator["repeats"], denominator["repeats"]),
        "config": {
            "numerator": numerator["name"],
            "denominator": denominator["name"],
            "target": target,
        },
        **environment(),
    }
