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

from feeders.bench_report import (
    WIDTH,
    draw_chart,
    missed,
    print_profile,
    render_profile,
    table,
)
from feeders.profiler import Profile, Trial, profile, takes_worker_options
from feeders.quiet import is_tf_log_line

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

ORDER = ("arrays", "sources", "images", "transport", "workers", "monitor", "distributed")
"""Suites run in this order; any other ``bench_*.py`` found runs after them, by name."""
TORCH_NOTE = "PyTorch not installed: DataLoader baselines skipped"
PATH_ENV = "FEEDERS_BENCH_PATH"
_DRAIN_S = 10.0  # how long to wait for a finished suite's last output
TIMED_UNITS = ("s", "ms", "s/epoch", "cpu s/epoch", "ms/batch", "ms/image")
"""Units of durations: a negative one is a suite's bug (a difference of noisy times), an error row."""

# NOTE [ what --quick runs ]
# `feeders bench --quick` must finish in about a minute on 2 cores, and each suite pays for
# importing TensorFlow in its own interpreter. So --quick leaves out the tf.data service suite
# (it starts a dispatcher and workers: ~50 s alone) and times the images suite's headline rows
# only; naming suites with --suites runs each named one whole, in its own quick mode.
QUICK_LEAVES_OUT = {
    "distributed": "left out of --quick (tf.data service start-up, ~50 s): "
    "run feeders bench --quick --suites distributed",
}
QUICK_ARGS = {
    "images": [
        "--only",  # comma-separated substrings: in-process and pooled PIL decoding, tf.data
        "ImageFileSequence[pil],tf.data hand-written",
    ],
}
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
    extra: Sequence[str] = (),
    timeout_s: float,
    on_line: Callable[[str], None] = lambda line: None,
    stderr_log: Path | None = None,
) -> list[Row]:
    """Run one suite in a subprocess; its JSON rows, or one error row if it failed.

    ``on_line`` gets each line the suite writes to stderr (its progress), less
    TensorFlow's C++ log lines (:func:`feeders.quiet.is_tf_log_line`), which only
    ``stderr_log`` keeps. ``extra`` is appended to the suite's arguments.
    """
    root = Path(__file__).resolve().parents[1]  # the folder that holds this feeders package
    own = path.parent == Path(__file__).resolve().parent / "benchmarks"
    script = ["-m", f"feeders.benchmarks.bench_{name}"] if own else [str(path)]
    command = [sys.executable, *script, *(["--quick"] if quick else []), *extra]
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
                if line.strip() and not is_tf_log_line(line):
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
    p: argparse.ArgumentParser = subparsers.add_parser(
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

    make = resolve(args.feeder, "--feeder")
    source = make if callable(make) and takes_worker_options(make) else make()
    model = resolve(args.model, "--model")() if args.model else None
    console = _console()
    with console.status(f"profiling {args.feeder} (budget {args.budget:.0f} s)"):
        found = profile(source, model=model, budget_s=args.budget)
    print_profile(console, found)
    return 0


def main(args: argparse.Namespace) -> int:
    """Run the suites; 0 when every suite ran, 1 when any failed or was missing.

    With ``--feeder``: profile that pipeline instead (:func:`profile_command`).
    """
    if args.feeder is not None:
        return profile_command(args)
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = _console()
    benchmarks = find_benchmarks(args.benchmarks)
    available = find_suites(benchmarks)
    named = [s.strip() for s in args.suites.split(",") if s.strip()]
    wanted = named or list(available)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    left_out: list[Row] = []
    if args.quick and not named:  # NOTE [ what --quick runs ]
        for name, why in QUICK_LEAVES_OUT.items():
            if name in wanted:
                wanted.remove(name)
                row = {"name": f"bench_{name}", "skipped": why}
                left_out.append(normalise(row, name, benchmarks))
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
                progress.update(task, status=line[-60:])

            started = time.perf_counter()
            suite_rows = run_suite(
                name,
                available[name],
                benchmarks,
                quick=args.quick,
                extra=QUICK_ARGS.get(name, []) if args.quick and not named else [],
                timeout_s=args.timeout,
                on_line=show,
                stderr_log=args.out / f"{name}.stderr.txt",
            )
            failed = any(r.get("status") == "error" for r in suite_rows)
            rows.extend(normalise(r, name, benchmarks) for r in suite_rows)
            seconds[name] = time.perf_counter() - started
            done = f"{len(suite_rows)} rows in {seconds[name]:.0f} s"
            progress.update(task, completed=1, status=f"[red]failed ({done})" if failed else done)
    rows.extend(left_out)
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
    hint = "chart: none (matplotlib is missing: pip install 'feeders[bench]')"
    console.print(f"chart: {chart}" if chart else hint, markup=False)  # [bench] is not markup
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
        elif row["unit"] in TIMED_UNITS and min(row["value"], row.get("min", row["value"])) < 0:
            status = "error"
            out["error"] = (
                f"negative timing {row['value']:.4g} {row['unit']}: a duration cannot be "
                "negative (a difference of noisy times?); the suite must report each time itself"
            )
    out["status"] = status
    if status != "ok":
        for key in ("value", "unit", "min", "median", "max"):
            out.setdefault(key, None)
        out.setdefault("repeats", 0)
        out.setdefault("config", {})
    for key in ("min", "median", "max"):
        out.setdefault(key, out["value"])
    out["missed"] = missed(out)  # True/False for a ratio row with a >=/<= target, else None
    if status == "error":
        for key in ("value", "min", "median", "max"):
            out[key] = None
    return out


def _console() -> Any:
    """A rich console at most :data:`WIDTH` columns wide (exactly that into a file or pipe)."""
    from rich.console import Console

    console = Console()
    return Console(width=min(console.width, WIDTH) if console.is_terminal else WIDTH)


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
