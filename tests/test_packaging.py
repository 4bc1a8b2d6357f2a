"""The project as users get it: a wheel in a fresh venv, used from an empty folder; a full sdist.

Why a venv of its own: a source checkout hides what the wheel forgot (the
benchmark suites, the bundled data), so the commands run here from a folder
with no checkout in sight, through the installed ``feeders`` script. The venv
borrows this environment's dependencies through a ``.pth`` line (added after
pip installs the wheel, so pip never sees this environment's feeders) instead
of downloading TensorFlow again; CI (``.ci/run``) also installs the wheel with
its real dependencies.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
TF_LOG_MARKERS = ("absl::InitializeLog", "cuInit", "I0000 ", "W0000 ", "E0000 ", "oneDNN")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "build", "--sdist", "--wheel", "--no-isolation"]
    done = subprocess.run(
        [*command, "--outdir", str(out), str(ROOT)], capture_output=True, text=True, cwd=out
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def clean_env(**extra: str) -> dict[str, str]:
    """This environment minus anything that points Python at the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FEEDERS_BENCH_PATH")}
    return {**env, **extra}


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
    [wheel] = dist.glob("feeders-*.whl")
    python = home / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    subprocess.run([*install, str(wheel)], check=True, env=clean_env())
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "_borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return home


def feeders_command(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(venv / "bin" / "feeders"), *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done


def test_the_wheel_imports_from_the_venv_not_the_checkout(venv: Path, tmp_path: Path) -> None:
    code = "import feeders, feeders.benchmarks._timing as t; print(feeders.__file__, t.__file__)"
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert all(p.startswith(str(venv)) for p in done.stdout.split()), done.stdout


def test_demo_validate_and_bench_work_from_an_empty_folder(venv: Path, tmp_path: Path) -> None:
    demo = feeders_command(venv, tmp_path, "demo", "--epochs", "1")
    assert "test: loss" in demo.stdout and "MNIST: epoch 1/1: loss" in demo.stdout  # progress
    validate = feeders_command(venv, tmp_path, "validate", "--epochs", "1", "--model", "mnist")
    assert "runs identical" in validate.stdout and "mnist / generator: done" in validate.stdout
    bench = feeders_command(venv, tmp_path, "bench", "--quick", "--suites", "arrays")
    assert "feeders bench" in bench.stdout and (tmp_path / "bench-out" / "results.jsonl").is_file()
    for done in (demo, validate, bench):  # quiet by default: no TensorFlow start-up lines
        assert not [m for m in TF_LOG_MARKERS if m in done.stdout + done.stderr], done.stderr


USER_MODULE = """
import ctypes

import numpy as np

import feeders

LIBC = ctypes.PyDLL(None)  # its calls keep the GIL: threads cannot overlap them


class Decode:
    def __len__(self):
        return 24

    def __getitem__(self, i):
        LIBC.usleep(30_000)
        return np.full((8, 16, 16, 3), i, np.float32), np.arange(8)


def make(workers=0, use_multiprocessing=False):
    return feeders.adapt(Decode(), workers=workers, use_multiprocessing=use_multiprocessing)
"""


def test_bench_profiles_a_users_module_in_the_current_folder(venv: Path, tmp_path: Path) -> None:
    (tmp_path / "my_pipeline.py").write_text(USER_MODULE)
    command = ("bench", "--feeder", "my_pipeline:make", "--budget", "15")
    done = feeders_command(venv, tmp_path, *command)
    assert "recommended: workers=" in done.stdout and "use_multiprocessing=True:" in done.stdout
    assert "images/s" in done.stdout
    assert not [m for m in TF_LOG_MARKERS if m in done.stderr], done.stderr


def test_the_unpacked_sdist_collects_every_test_and_passes_the_fast_ones(
    dist: Path, tmp_path: Path
) -> None:
    [sdist] = dist.glob("feeders-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    [unpacked] = tmp_path.glob("feeders-*")
    assert {"examples", "tests", "docs"} <= {p.name for p in unpacked.iterdir()}
    assert (unpacked / "feeders" / "benchmarks" / "bench_arrays.py").is_file()

    def pytest_in(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
        env = clean_env(PYTHONPATH=str(where))
        return subprocess.run(command, cwd=where, env=env, capture_output=True, text=True)

    collected = pytest_in(unpacked, "--collect-only", "-q")
    assert collected.returncode == 0, collected.stdout[-4000:]
    reference = pytest_in(ROOT, "--collect-only", "-q")
    count = [done.stdout.splitlines()[-1].split()[0] for done in (collected, reference)]
    assert count[0] == count[1]  # "N tests collected in ...": the sdist lacks none
    fast = ("tests/test_bench.py", "tests/test_registry.py", "tests/test_workers.py")
    passed = pytest_in(unpacked, "-q", "-x", "-m", "not slow", *fast)
    assert passed.returncode == 0, passed.stdout[-4000:]
