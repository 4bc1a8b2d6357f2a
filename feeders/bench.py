"""``feeders bench``: run the benchmark suites side by side; a table, JSON lines and a chart.

``feeders bench --feeder package.module:function`` profiles the user's own
pipeline instead (:func:`profile`, from :mod:`feeders.profiler`).

Why subprocesses: each suite times its loaders in a fresh interpreter (no
TensorFlow state, threads or caches carried over from the suite before), and
a suite that crashes or hangs costs its own row, not the run.

The suites ship inside the package (``feeders/benchmarks/``), or another
folder is given with ``--benchmarks``. ``FEEDERS_BENCH_PATH`` (folders
separated by ``os.pathsep``) adds suites of one's own: a ``bench_<name>.py``
there runs as a script and can use ``feeders.benchmarks._timing``. Every suite
prints one JSON object per line (``feeders.benchmarks._timing.emit``); rows with ``"skipped"``
are notes about baselines that could not run here.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from feeders.profiler import Profile, Trial, profile, takes_worker_options

__all__ = [
    "Profile",
    "Trial",
    "add_parser",
    "find_benchmarks",
    "find_suites",
    "profile",
    "render_profile",
    "run_suite",
]

ORDER = ("arrays", "sources", "images", "transport", "monitor", "distributed")
"""Suites run in this order; any other ``bench_*.py`` found runs after them, by name."""
CHARTED = ("images/s", "batches/s")
TORCH_NOTE = "PyTorch not installed: DataLoader baselines skipped"
PATH_ENV = "FEEDERS_BENCH_PATH"
_DRAIN_S = 10.0  # how long to wait for a finished suite's last output
Row = dict[str, Any]


def find_benchmarks(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The folder of benchmark suites: the package's own, or ``explicit``.

    Raises:
        FileNotFoundError: ``explicit`` is not a suites folder (no ``_timing.py``).
    """
    candidate = Path(explicit) if explicit is not None else Path(__file__).parent / "benchmarks"
    if not (candidate / "_timing.py").is_file():
        raise FileNotFoundError(
            f"`--benchmarks` must be a folder of benchmark suites with a _timing.py, but "
            f"found none at {candidate}. Leave --benchmarks out to run the suites that ship "
            "with feeders."
        )
    return candidate.resolve()


def find_suites(benchmarks: Path) -> dict[str, Path]:
    """Every ``bench_<name>.py`` in ``benchmarks`` and the folders of ``$FEEDERS_BENCH_PATH``."""
    folders = [benchmarks, *(Path(p) for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p)]
    found: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(folder.glob("bench_*.py")):
            found.setdefault(path.stem.removeprefix("bench_"), path.resolve())
    rank = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda item: (rank.get(item[0], len(ORDER)), item[0])))


def run_suite(
    name: str,
    path: Path,
    benchmarks: Path,
    *,
    quick: bool,
    timeout_s: float,
    on_line: Callable[[str], None] = lambda line: None,
    stderr_log: Path | None = None,
) -> list[Row]:
    """Run one suite in a subprocess; its JSON rows, or one error row if it failed.

    ``on_line`` gets each line the suite writes to stderr (its progress).
    """
    root = Path(__file__).resolve().parents[1]  # the folder that holds this feeders package
    own = path.parent == Path(__file__).resolve().parent / "benchmarks"
    script = ["-m", f"feeders.benchmarks.bench_{name}"] if own else [str(path)]
    command = [sys.executable, *script, *(["--quick"] if quick else [])]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    process = subprocess.Popen(
        command,
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its worker processes can be stopped with it
    )
    tail: deque[str] = deque(maxlen=20)
    out: list[str] = []

    def read_stderr() -> None:
        assert process.stderr is not None
        with open(stderr_log or os.devnull, "w") as log:
            for line in process.stderr:
                log.write(line)
                if line.strip():
                    tail.append(line.rstrip())
                    on_line(line.strip())

    def read_stdout() -> None:
        assert process.stdout is not None
        out.extend(process.stdout)

    readers = [threading.Thread(target=fn, daemon=True) for fn in (read_stderr, read_stdout)]
    with process:  # closes the pipes
        for reader in readers:
            reader.start()
        try:
            code: int | None = process.wait(timeout_s)
        except BaseException as err:  # a timeout, or Ctrl-C: stop the suite and its workers
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            if not isinstance(err, subprocess.TimeoutExpired):
                raise
            code = None
        for reader in readers:
            reader.join(_DRAIN_S)  # a leftover child of the suite may hold the pipes open
    rows = [row for row in map(_parse, out) if row is not None]
    if code == 0:
        return rows
    why = f"timed out after {timeout_s:.0f} s" if code is None else f"exited with code {code}"
    detail = " | ".join(list(tail)[-3:])
    return [*rows, _error_row(name, f"{' '.join(command)} {why}: {detail}")]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``feeders bench`` to the ``feeders`` command's sub-commands."""
    p = subparsers.add_parser(
        "bench", help="run the benchmark suites: a table, results.jsonl and throughput.png"
    )
    p.add_argument("--quick", action="store_true", help="pass --quick to every suite (< 1 min)")
    p.add_argument("--out", type=Path, default=Path("bench-out"), help="folder for the results")
    p.add_argument(
        "--suites", default="", help="comma-separated suite names (default: every suite found)"
    )
    p.add_argument("--benchmarks", default=None, help="the checkout's benchmarks/ folder")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per suite")
    p.add_argument(
        "--feeder",
        metavar="MODULE:FUNCTION",
        default=None,
        help="profile your own pipeline instead: a function returning a feeder or anything "
        "feeders.adapt accepts (given workers= and use_multiprocessing= keywords if it takes them)",
    )
    p.add_argument(
        "--model",
        metavar="MODULE:FUNCTION",
        default=None,
        help="with --feeder: a function returning a compiled Keras model (adds a short fit "
        "and its data-wait fraction)",
    )
    p.add_argument(
        "--budget", type=float, default=30.0, help="with --feeder: seconds for the whole profile"
    )
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up logs")
    p.set_defaults(run=main)
    return p


def resolve(spec: str, option: str) -> Any:
    """``package.module:function`` → that object, importing from the current folder too.

    Raises:
        ValueError: ``spec`` is not ``module:function`` or names nothing there.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(
            f"`{option}` must be package.module:function, but got {option}={spec!r}. "
            "Name the module and the function, e.g. my_project.data:make_feeder."
        )
    if os.getcwd() not in sys.path:  # a console script does not put the current folder there
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attribute)
    except AttributeError:
        names = sorted(n for n in vars(module) if not n.startswith("_"))
        raise ValueError(
            f"`{option}` names {attribute!r}, which module {module_name!r} does not define; it "
            f"has {names}."
        ) from None


def profile_command(args: argparse.Namespace) -> int:
    """``feeders bench --feeder``: profile the user's pipeline, print the table and advice."""
    from rich.console import Console

    make = resolve(args.feeder, "--feeder")
    source = make if callable(make) and takes_worker_options(make) else make()
    model = resolve(args.model, "--model")() if args.model else None
    console = Console(width=min(Console().width, 120))
    with console.status(f"profiling {args.feeder} (budget {args.budget:.0f} s)"):
        found = profile(source, model=model, budget_s=args.budget)
    console.print(profile_table(found))
    console.print(f"recommended: {found.recommendation}", markup=False)
    return 0


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


def render_profile(found: Profile) -> str:
    """The profile's table and recommendation as plain text (``str(profile)``)."""
    from rich.console import Console

    console = Console(width=120, record=True, file=io.StringIO(), color_system=None)
    console.print(profile_table(found))
    console.print(f"recommended: {found.recommendation}", markup=False)
    return console.export_text()


def main(args: argparse.Namespace) -> int:
    """Run the suites; 0 when every suite ran, 1 when any failed or was missing.

    With ``--feeder``: profile that pipeline instead (:func:`profile_command`).
    """
    if args.feeder is not None:
        return profile_command(args)
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console()
    if not console.is_terminal:  # a log file: wide rows rather than wrapped ones
        console = Console(width=max(console.width, 200))
    benchmarks = find_benchmarks(args.benchmarks)
    available = find_suites(benchmarks)
    wanted = [s.strip() for s in args.suites.split(",") if s.strip()] or list(available)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    seconds: dict[str, float] = {}
    columns = (SpinnerColumn(), TextColumn("{task.description:<12}"), TimeElapsedColumn())
    with Progress(*columns, TextColumn("{task.fields[status]}"), console=console) as progress:
        tasks = {
            name: progress.add_task(name, total=1, start=False, status="waiting") for name in wanted
        }
        for name in wanted:
            task = tasks[name]
            if name not in available:
                missing = _error_row(name, f"no bench_{name}.py; suites found: {sorted(available)}")
                rows.append(normalise(missing, name, benchmarks))
                progress.update(task, completed=1, status="[red]missing")
                continue
            progress.start_task(task)

            def show(line: str, task: Any = task) -> None:
                progress.update(task, status=line[-80:])

            started = time.perf_counter()
            suite_rows = run_suite(
                name,
                available[name],
                benchmarks,
                quick=args.quick,
                timeout_s=args.timeout,
                on_line=show,
                stderr_log=args.out / f"{name}.stderr.txt",
            )
            failed = any(r.get("status") == "error" for r in suite_rows)
            rows.extend(normalise(r, name, benchmarks) for r in suite_rows)
            seconds[name] = time.perf_counter() - started
            done = f"{len(suite_rows)} rows in {seconds[name]:.0f} s"
            progress.update(task, completed=1, status=f"[red]failed ({done})" if failed else done)
    if importlib.util.find_spec("torch") is None:
        note = {"name": "torch DataLoader", "skipped": TORCH_NOTE}
        rows.append(normalise(note, "bench", benchmarks))
    results = args.out / "results.jsonl"
    results.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    console.print(table(rows))
    chart = draw_chart(rows, args.out / "throughput.png")
    times = ", ".join(f"{name} {secs:.0f} s" for name, secs in seconds.items())
    console.print(f"suites ran {sum(seconds.values()):.0f} s ({times})")
    console.print(f"rows: {results}")
    console.print(f"chart: {chart}" if chart else "chart: none (pip install 'feeders[bench]')")
    if importlib.util.find_spec("torch") is None:
        console.print(f"note: {TORCH_NOTE}")
    return int(any(r["status"] == "error" for r in rows))


def normalise(row: Row, suite: str, benchmarks: Path) -> Row:
    """Every row gets the same keys: value, unit, min/median/max, repeats, config, cores, versions.

    ``status`` is ``"ok"`` (a figure), ``"skipped"`` (a baseline that cannot run
    here; ``skipped`` says why) or ``"error"`` (``error`` says what failed); the
    figures of rows that are not ``"ok"`` are ``None``.
    """
    out = {**_environment(benchmarks), **row}
    out.setdefault("suite", suite)
    out.setdefault("name", f"bench_{suite}")
    if "skipped" in row:
        status = "skipped"
    elif "error" in row:
        status = "error"
    else:
        missing = [k for k in ("value", "unit", "repeats", "config") if k not in row]
        status = "error" if missing else "ok"
        if missing:
            out["error"] = f"the suite's row lacks {missing}"
    out["status"] = status
    if status != "ok":
        for key in ("value", "unit", "min", "median", "max"):
            out.setdefault(key, None)
        out.setdefault("repeats", 0)
        out.setdefault("config", {})
    for key in ("min", "median", "max"):
        out.setdefault(key, out["value"])
    return out


def table(rows: list[Row]) -> Any:
    """A rich table, one line per row; a ratio row shows its target, a pool row its counters."""
    from rich.table import Table
    from rich.text import Text  # not markup: names like "ImageFileSequence[pil]" have brackets

    grid = Table(title="feeders bench", title_justify="left")
    for column in ("suite", "loader", "value", "unit", "min..max", "target / note"):
        grid.add_column(column, justify="right" if column in ("value", "min..max") else "left")
    for row in rows:
        config = row.get("config") or {}
        if row["status"] != "ok":
            note = str(row.get("error") or row.get("skipped"))
            style = "red" if row["status"] == "error" else "dim"
            grid.add_row(
                row["suite"], Text(row["name"]), "-", "", "", Text(note[:200]), style=style
            )
            continue
        ratio = row["unit"] == "ratio"
        value = f"{row['value']:.2f}x" if ratio else f"{row['value']:.4g}"
        spread = f"{row['min']:.4g}..{row['max']:.4g}" if row["repeats"] > 1 and not ratio else ""
        target = f"target {config['target']}" if ratio and config.get("target") else ""
        pool = config.get("pool")
        if isinstance(pool, dict):  # a worker pool's counters for its last epoch
            target = (
                f"per worker {pool.get('batches_per_worker')}, queue "
                f"{pool.get('mean_queue_occupancy', 0):.2f}, waited {pool.get('consumer_wait_s', 0):.2f} s"
            )
        grid.add_row(row["suite"], Text(row["name"]), value, row["unit"], spread, Text(target))
    return grid


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


def _parse(line: str) -> Row | None:
    if not line.startswith("{"):
        return None
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    return row if isinstance(row, dict) else None


def _error_row(suite: str, error: str) -> Row:
    return {"suite": suite, "name": f"bench_{suite}", "status": "error", "error": error}


_ENVIRONMENT: dict[Path, Row] = {}


def _environment(benchmarks: Path) -> Row:
    """``benchmarks._timing.environment()``: the one definition of a row's machine and versions."""
    if benchmarks not in _ENVIRONMENT:
        spec = importlib.util.spec_from_file_location(
            "_feeders_bench_timing", benchmarks / "_timing.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
        _ENVIRONMENT[benchmarks] = module.environment()
    return dict(_ENVIRONMENT[benchmarks])


def run(argv: Sequence[str] | None = None) -> int:
    """``feeders bench`` without the rest of the CLI (for tests and scripts)."""
    parser = argparse.ArgumentParser(prog="feeders")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *(argv or [])])
    return main(args)
