"""What ``feeders bench`` shows: the suites' table and chart, the profile's table, the verdicts.

Why apart from :mod:`feeders.bench`: running suites and presenting rows change
for different reasons. Tables are sized for a 120-column terminal (:data:`WIDTH`):
long loader names and notes wrap inside their column instead of widening it.
A ratio row whose ``target`` (``">= 1.5"``, ``"<= 1.05"``) it does not meet is a
*miss* (:func:`missed`): marked in the table and counted below it.
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path
from typing import Any

from feeders.profiler import Profile

__all__ = [
    "WIDTH",
    "draw_chart",
    "missed",
    "number",
    "print_profile",
    "profile_table",
    "render_profile",
    "table",
]

WIDTH = 120
CHARTED = ("images/s", "batches/s")
Row = dict[str, Any]
_TARGET = re.compile(r"^\s*(>=|<=)\s*([0-9.]+)")


def missed(row: Row) -> bool | None:
    """Whether an ``ok`` ratio row misses its ``>=``/``<=`` target; None without such a target."""
    target = (row.get("config") or {}).get("target")
    match = _TARGET.match(target) if isinstance(target, str) else None
    if row.get("status") != "ok" or row.get("unit") != "ratio" or match is None:
        return None
    bound = float(match[2])
    return bool(row["value"] < bound if match[1] == ">=" else row["value"] > bound)


def number(value: float) -> str:
    """Three significant digits, thousands as k and millions as M: ``29.4k``, ``0.413``."""
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:.3g}M"
    if size >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}" if size >= 1e-3 or value == 0 else f"{value:.2g}"


def table(rows: list[Row]) -> Any:
    """A rich table, one line per row; a ratio row shows its target (and MISS), a pool row its counters."""
    from rich.table import Table
    from rich.text import Text  # not markup: names like "ImageFileSequence[pil]" have brackets

    misses = sum(bool(missed(r)) for r in rows)
    caption = f"{misses} ratio rows miss their target (MISS)" if misses else None
    grid = Table(
        title="feeders bench", title_justify="left", caption=caption, caption_justify="left"
    )
    grid.add_column("suite", no_wrap=True)
    grid.add_column("loader", ratio=3, overflow="fold")
    grid.add_column("value", justify="right", no_wrap=True)
    grid.add_column("unit", no_wrap=True)
    grid.add_column("min..max", justify="right", max_width=13, overflow="fold")
    grid.add_column("target / note", ratio=2, overflow="fold")
    for row in rows:
        config = row.get("config") or {}
        if row["status"] != "ok":
            note = str(row.get("error") or row.get("skipped"))
            style = "red" if row["status"] == "error" else "dim"
            grid.add_row(
                row["suite"], Text(row["name"]), "-", "", "", Text(note[:300]), style=style
            )
            continue
        ratio = row["unit"] == "ratio"
        value = f"{row['value']:.2f}x" if ratio else number(row["value"])
        spread = (
            f"{number(row['min'])}..{number(row['max'])}"
            if row["repeats"] > 1 and not ratio
            else ""
        )
        target = Text(f"target {config['target']}" if ratio and config.get("target") else "")
        if missed(row):
            target = Text.assemble(("MISS ", "bold red"), target)
        pool = config.get("pool")
        if isinstance(pool, dict):  # a worker pool's counters for its last epoch
            target = Text(
                f"per worker {pool.get('batches_per_worker')}, queue "
                f"{pool.get('mean_queue_occupancy', 0):.2f}, waited {pool.get('consumer_wait_s', 0):.2f} s"
            )
        grid.add_row(row["suite"], Text(row["name"]), value, row["unit"], spread, target)
    return grid


def profile_table(found: Profile) -> Any:
    """A rich table of a :class:`Profile`: one row per setting, the recommendation marked."""
    from rich.table import Table
    from rich.text import Text

    images = found.baseline.images
    grid = Table(title="feeders bench --feeder", title_justify="left")
    grid.add_column("setting", no_wrap=True)
    for column in ("batches/s", *(["images/s"] if images else []), "CPU ms/batch", "first batch s"):
        grid.add_column(column, justify="right")
    if found.data_wait:
        grid.add_column("data wait", justify="right")
    grid.add_column("note", overflow="fold")
    for trial in found.trials:
        label = Text(trial.label)
        if trial.error is not None:
            blanks = ["-"] * (len(grid.columns) - 2)
            grid.add_row(label, *blanks, Text(trial.error[:160]), style="dim")
            continue
        figures = [f"{trial.batches_per_s:.4g}"]
        figures += [f"{trial.images_per_s:.4g}"] if images else []
        figures += [f"{trial.cpu_ms_per_batch:.3g}", f"{trial.first_batch_s:.2f}"]
        if found.data_wait:
            wait = found.data_wait.get(trial.label)
            figures.append("" if wait is None else f"{wait:.2f}")
        ratio = trial.batches_per_s / found.baseline.batches_per_s
        note = f"{ratio:.2f}x workers=0" + (", recommended" if trial is found.recommended else "")
        style = "bold green" if trial is found.recommended else None
        grid.add_row(label, *figures, Text(note), style=style)
    return grid


def print_profile(console: Any, found: Profile) -> None:
    """The profile's table and its recommendation, on ``console`` (a rich ``Console``)."""
    console.print(profile_table(found))
    console.print(f"recommended: {found.recommendation}", markup=False)


def render_profile(found: Profile) -> str:
    """The profile's table and recommendation as plain text (``str(profile)``)."""
    from rich.console import Console

    console = Console(width=WIDTH, record=True, file=io.StringIO(), color_system=None)
    print_profile(console, found)
    return console.export_text()


def draw_chart(rows: list[Row], path: Path) -> Path | None:
    """Bar charts of the images/s and batches/s rows (median; whiskers min–max); None without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    panels = {
        unit: [r for r in rows if r["status"] == "ok" and r["unit"] == unit] for unit in CHARTED
    }
    panels = {unit: found for unit, found in panels.items() if found} or {"no throughput rows": []}
    heights = [max(len(found), 1) for found in panels.values()]
    figure = Figure(
        figsize=(11, 1.5 + 0.34 * sum(heights) + 0.5 * len(panels)), layout="constrained"
    )
    axes = figure.subplots(len(panels), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, (unit, found) in zip(axes, panels.items(), strict=True):
        if not found:
            ax.text(0.5, 0.5, "no images/s or batches/s rows", ha="center", va="center")
            ax.set_axis_off()
            continue
        values = [r["value"] for r in found]
        whiskers = [[r["value"] - r["min"] for r in found], [r["max"] - r["value"] for r in found]]
        colours = ["tab:blue" if _is_ours(r["name"]) else "tab:gray" for r in found]
        bars = ax.barh(range(len(found)), values, xerr=whiskers, color=colours, capsize=2)
        ax.bar_label(bars, fmt="%.4g", fontsize=7, padding=4)
        ax.set_yticks(range(len(found)), [f"{r['suite']}: {r['name']}" for r in found], fontsize=8)
        ax.invert_yaxis()
        if max(values) > 100 * min(values) > 0:  # orders of magnitude apart: keep every bar visible
            ax.set_xscale("log")
        ax.set_xlabel(unit)
        ax.set_title(f"{unit} (median of repeats; blue: feeders, grey: baselines)", fontsize=9)
    first = next((r for r in rows if r["status"] == "ok"), rows[0] if rows else {})
    figure.suptitle(
        f"feeders bench, {first.get('cores')} cores, {time.strftime('%Y-%m-%d')}", fontsize=10
    )
    figure.savefig(path, dpi=110)
    return path


def _is_ours(name: str) -> bool:
    return name.startswith("ImageFileSequence") or any(m in name for m in ("feeder", "WorkerPool"))
