"""The API reference: every cross-reference in the docstrings resolves, and the site builds."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
spec = importlib.util.spec_from_file_location("build_docs", ROOT / "tools" / "build_docs.py")
assert spec is not None and spec.loader is not None
build_docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_docs)


def test_every_reference_in_the_documented_docstrings_resolves() -> None:
    assert build_docs.broken_references(build_docs.MODULES) == []


def test_a_broken_reference_is_reported_with_its_place(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType(
        "feeders_docs_probe", "See :class:`~feeders.Feeder` and :meth:`Feeder.bnd`."
    )

    def helper() -> None:
        """Like :func:`feeders.adapt`, unlike :func:`feeders.adaptt`."""

    helper.__module__ = module.__name__
    module.helper = helper  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    assert build_docs.broken_references([module.__name__]) == [
        "feeders_docs_probe.helper: `feeders.adaptt` resolves to nothing",
        "feeders_docs_probe: `Feeder.bnd` resolves to nothing",
    ]


@pytest.mark.slow
def test_the_site_builds(tmp_path: Path) -> None:
    pytest.importorskip("pdoc")
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_docs.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'id="adapt"' in (tmp_path / "feeders.html").read_text()
    assert 'id="profile"' in (tmp_path / "feeders" / "bench.html").read_text()
    assert 'href="#Feeder.bind"' in (tmp_path / "feeders" / "feeder.html").read_text()
