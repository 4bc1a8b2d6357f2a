"""`feeders bench`: the rows' schema, the error rows, the chart, the CLI wiring.

Fast tests run fake suites (tests/bench_suites/, found through FEEDERS_BENCH_PATH);
the slow one runs the real `arrays` suite end to end.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from feeders import bench
from feeders.cli import build_parser

FAKES = Path(__file__).parent / "bench_suites"
ROOT = Path(__file__).parents[1]
SCHEMA = ("suite", "name", "status", "value", "unit", "min", "median", "max", "repeats")
SCHEMA += ("config", "cores", "versions")


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(bench.PATH_ENV, str(FAKES))


def run_bench(out: Path, *args: str) -> tuple[int, list[dict[str, Any]]]:
    code = bench.run(["--quick", "--out", str(out), *args])
    lines = (out / "results.jsonl").read_text().splitlines()
    return code, [json.loads(line) for line in lines]


def check_schema(rows: list[dict[str, Any]]) -> None:
    assert rows
    for row in rows:
        assert set(SCHEMA) <= set(row), row
        assert row["status"] in ("ok", "skipped", "error")
        assert isinstance(row["config"], dict) and isinstance(row["versions"], dict)
    for row in (r for r in rows if r["status"] == "ok"):
        assert isinstance(row["value"], float) and isinstance(row["unit"], str)
        assert row["min"] <= row["median"] <= row["max"] and row["repeats"] >= 1


def test_rows_share_one_schema_and_the_chart_is_written(tmp_path: Path, fakes: None) -> None:
    code, rows = run_bench(tmp_path, "--suites", "fake")
    assert code == 0
    check_schema(rows)
    ok = {r["name"]: r for r in rows if r["status"] == "ok"}
    assert set(ok) == {"feeders loader", "baseline loader", "feeders.epoch", "ours vs baseline"}
    assert ok["feeders loader"]["config"] == {"quick": True, "batch_size": 8}  # --quick reached it
    assert ok["ours vs baseline"]["unit"] == "ratio"
    assert ok["ours vs baseline"]["value"] == pytest.approx(800 / ((400 + 400 / 1.2) / 2))
    skipped = [r["skipped"] for r in rows if r["status"] == "skipped"]
    assert "torch is not importable" in skipped
    assert (bench.TORCH_NOTE in skipped) == (importlib.util.find_spec("torch") is None)
    chart = (tmp_path / "throughput.png").read_bytes()
    assert chart.startswith(b"\x89PNG") and len(chart) > 10_000
    assert (tmp_path / "fake.stderr.txt").read_text() == "fake: timing 3 loaders\n"


def test_failed_and_missing_suites_become_error_rows_and_the_rest_still_run(
    tmp_path: Path, fakes: None
) -> None:
    code, rows = run_bench(tmp_path, "--suites", "broken,nosuch,fake")
    assert code == 1
    check_schema(rows)
    errors = {r["suite"]: r["error"] for r in rows if r["status"] == "error"}
    assert set(errors) == {"broken", "nosuch"}
    assert "exited with code 1" in errors["broken"]
    assert "the broken suite failed on purpose" in errors["broken"]
    assert "no bench_nosuch.py; suites found: [" in errors["nosuch"]
    ran = {r["name"] for r in rows if r["status"] == "ok"}
    assert {"before the crash", "feeders loader"} <= ran  # rows before a crash are kept


def test_a_suite_that_hangs_is_stopped_at_the_timeout(tmp_path: Path, fakes: None) -> None:
    code, rows = run_bench(tmp_path, "--suites", "sleepy", "--timeout", "3")
    assert code == 1
    [row] = [r for r in rows if r["suite"] == "sleepy"]
    assert row["status"] == "error" and "timed out after 3 s" in row["error"]
    assert "sleepy: sleeping" in row["error"]


def test_the_suites_run_in_the_documented_order(fakes: None) -> None:
    suites = list(bench.find_suites(bench.find_benchmarks()))
    known = [name for name in bench.ORDER if name in suites]
    assert suites[: len(known)] == known
    assert {"arrays", "images", "transport", "monitor", "fake"} <= set(suites)


def test_a_folder_without_suites_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"`--benchmarks` must be a folder .*Leave --benchmarks out"
    ):
        bench.find_benchmarks(tmp_path)


def test_feeders_cli_has_the_bench_command() -> None:
    args = build_parser().parse_args(["bench", "--quick", "--suites", "arrays"])
    assert args.run is bench.main and args.quick and args.suites == "arrays"


@pytest.mark.slow
def test_quick_run_of_a_real_suite_from_the_command_line(tmp_path: Path) -> None:
    env = {**os.environ, bench.PATH_ENV: str(FAKES)}
    command = [sys.executable, "-m", "feeders", "bench", "--quick", "--suites", "arrays,fake"]
    done = subprocess.run(
        [*command, "--out", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    check_schema(rows)
    arrays = [r for r in rows if r["suite"] == "arrays"]
    assert len(arrays) >= 6 and all(r["status"] == "ok" for r in arrays)
    assert {"batches/s", "s/epoch", "ratio"} <= {r["unit"] for r in arrays}
    assert "feeders bench" in done.stdout and "as_dataset" in done.stdout  # the table
    assert (tmp_path / "throughput.png").stat().st_size > 10_000


def ratio(value: float, target: str) -> dict[str, Any]:
    row = {"suite": "fake", "name": f"a ratio with target {target}", "value": value}
    config = {"numerator": "a", "denominator": "b", "target": target}
    return {**row, "unit": "ratio", "repeats": 1, "config": config}


def test_misses_are_marked_and_the_table_fits_120_columns() -> None:
    from rich.console import Console

    benchmarks = bench.find_benchmarks()
    long_name = "feeders pool(workers=2, mp) + ImageFileSequence[simplejpeg] with a long suffix"
    rows = [
        bench.normalise(ratio(0.59, ">= 2.0"), "fake", benchmarks),
        bench.normalise(ratio(1.7, "<= 1.05"), "fake", benchmarks),
        bench.normalise(ratio(1.2, ">= 1.0 (alternative to the pil row)"), "fake", benchmarks),
        bench.normalise(ratio(0.4, "report"), "fake", benchmarks),
        bench.normalise(
            {"name": long_name, "value": 1234.5, "unit": "images/s", "repeats": 3, "config": {}},
            "images",
            benchmarks,
        ),
    ]
    assert [r["missed"] for r in rows] == [True, True, False, None, None]
    console = Console(width=120, file=io.StringIO(), color_system=None, record=True)
    console.print(bench.table(rows))
    text = console.export_text()
    assert max(map(len, text.splitlines())) <= 120
    marked = [line for line in text.splitlines() if "MISS target" in line]
    assert len(marked) == 2 and "target >= 2.0" in marked[0] and "target <= 1.05" in marked[1]
    assert "2 ratio rows miss their target (MISS)" in text


def test_a_negative_timing_is_an_error_row() -> None:
    row = {"name": "hop", "value": -1.495, "unit": "ms/batch", "repeats": 1, "config": {}}
    out = bench.normalise(row, "fake", bench.find_benchmarks())
    assert out["status"] == "error" and out["value"] is None
    assert "negative timing -1.495 ms/batch: a duration cannot be negative" in out["error"]


def test_without_matplotlib_the_hint_names_the_bench_extra(
    tmp_path: Path, fakes: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, "draw_chart", lambda rows, path: None)
    code, _ = run_bench(tmp_path, "--suites", "fake")
    assert code == 0
    assert (
        "chart: none (matplotlib is missing: pip install 'feeders[bench]')"
        in capsys.readouterr().out
    )


def test_quick_leaves_out_the_slow_suites_unless_named(
    tmp_path: Path, fakes: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "find_suites", lambda folder: {"fake": FAKES / "bench_fake.py"})
    monkeypatch.setattr(bench, "QUICK_LEAVES_OUT", {"fake": "left out of --quick (slow)"})
    code, rows = run_bench(tmp_path)
    assert code == 0
    assert [(r["status"], r.get("skipped")) for r in rows if r["suite"] == "fake"] == [
        ("skipped", "left out of --quick (slow)")
    ]
    code, rows = run_bench(tmp_path, "--suites", "fake")
    assert {r["name"] for r in rows if r["status"] == "ok"} >= {"feeders loader"}
