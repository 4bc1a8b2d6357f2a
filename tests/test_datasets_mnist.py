"""load_mnist: each lookup step, the bundled sample, and the errors for bad files."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from feeders.datasets import BUNDLED, MNIST_ENV_VAR, MnistSplits, load_mnist, mnist_source

Arrays = dict[str, npt.NDArray[np.uint8]]

REAL_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
IDX_NAMES = {
    "x_train": ("train-images-idx3-ubyte", 2051),
    "y_train": ("train-labels-idx1-ubyte", 2049),
    "x_test": ("t10k-images-idx3-ubyte", 2051),
    "y_test": ("t10k-labels-idx1-ubyte", 2049),
}
FIRST_TRAIN_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
FIRST_TEST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
TRAIN_CLASS_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture(autouse=True)
def no_real_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME at an empty folder and clear the variables, so only the test decides."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.delenv(MNIST_ENV_VAR, raising=False)
    return home


def fake_mnist(seed: int, n_train: int = 12, n_test: int = 5) -> Arrays:
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_npz(folder: Path, arrays: dict[str, Any], name: str = "mnist.npz") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / name, **arrays)
    return folder / name


def idx_bytes(array: npt.NDArray[np.uint8], magic: int) -> bytes:
    return np.array([magic, *array.shape], ">u4").tobytes() + array.tobytes()


def write_idx(folder: Path, arrays: Arrays, gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for key, (name, magic) in IDX_NAMES.items():
        data = idx_bytes(arrays[key], magic)
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(data) if gz else data)
    return folder


def assert_same(got: MnistSplits, want: Arrays) -> None:
    (x_train, y_train), (x_test, y_test) = got
    for key, array in zip(want, (x_train, y_train, x_test, y_test), strict=True):
        assert array.dtype == np.uint8, key
        assert array.flags.writeable, key
        np.testing.assert_array_equal(array, want[key], err_msg=key)


# --- 1. an explicit path ---------------------------------------------------------------


def test_path_to_npz_file(tmp_path: Path) -> None:
    want = fake_mnist(1)
    file = write_npz(tmp_path / "any", want, name="digits.npz")
    assert_same(load_mnist(file), want)
    assert mnist_source(str(file)) == str(file)


def test_path_to_folder_with_npz(tmp_path: Path) -> None:
    want = fake_mnist(2)
    write_npz(tmp_path / "d", want)
    assert_same(load_mnist(tmp_path / "d"), want)


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
def test_path_to_folder_with_idx_files(tmp_path: Path, gz: bool) -> None:
    want = fake_mnist(3)
    folder = write_idx(tmp_path / "raw", want, gz=gz)
    assert_same(load_mnist(folder), want)
    assert mnist_source(folder) == str(folder)


def test_path_wins_over_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    want = fake_mnist(4)
    monkeypatch.setenv(MNIST_ENV_VAR, str(write_npz(tmp_path / "env", fake_mnist(5)).parent))
    assert_same(load_mnist(write_npz(tmp_path / "given", want)), want)


def test_npz_wins_over_idx_in_one_folder(tmp_path: Path) -> None:
    want = fake_mnist(6)
    folder = write_idx(tmp_path / "both", fake_mnist(7))
    write_npz(folder, want)
    assert_same(load_mnist(folder), want)


# --- 2. $FEEDERS_DATA_DIR -----------------------------------------------------------


def test_env_var_npz_wins_over_keras_cache(
    tmp_path: Path, no_real_locations: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    want = fake_mnist(8)
    write_npz(no_real_locations / ".keras" / "datasets", fake_mnist(9))
    monkeypatch.setenv(MNIST_ENV_VAR, str(write_npz(tmp_path / "env", want).parent))
    assert_same(load_mnist(), want)
    assert mnist_source() == str(tmp_path / "env" / "mnist.npz")


def test_env_var_idx_wins_over_keras_cache(
    tmp_path: Path, no_real_locations: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    want = fake_mnist(10)
    write_npz(no_real_locations / ".keras" / "datasets", fake_mnist(11))
    monkeypatch.setenv(MNIST_ENV_VAR, str(write_idx(tmp_path / "env", want)))
    assert_same(load_mnist(), want)


def test_env_var_without_data_falls_through(
    tmp_path: Path, no_real_locations: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    want = fake_mnist(12)
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv(MNIST_ENV_VAR, str(tmp_path / "empty"))
    write_npz(no_real_locations / ".keras" / "datasets", want)
    assert_same(load_mnist(), want)


# --- 3./4. the Keras cache, as mnist.npz or IDX files -----------------------------------


def test_keras_cache_under_home(
    no_real_locations: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    want = fake_mnist(13)
    write_npz(no_real_locations / ".keras" / "datasets", want)
    assert_same(load_mnist(), want)
    assert capsys.readouterr().err == ""


def test_keras_home_replaces_home(
    tmp_path: Path, no_real_locations: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    want = fake_mnist(14)
    write_npz(no_real_locations / ".keras" / "datasets", fake_mnist(15))
    write_npz(tmp_path / "kh" / "datasets", want)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert_same(load_mnist(), want)


def test_idx_files_in_keras_cache(no_real_locations: Path) -> None:
    want = fake_mnist(16)
    write_idx(no_real_locations / ".keras" / "datasets", want)
    assert_same(load_mnist(), want)
    assert mnist_source() == str(no_real_locations / ".keras" / "datasets")


# --- 5. the bundled sample ---------------------------------------------------------------


def test_bundled_sample_when_nothing_found(capsys: pytest.CaptureFixture[str]) -> None:
    (x_train, y_train), (x_test, y_test) = load_mnist()
    assert (x_train.shape, y_train.shape, x_test.shape, y_test.shape) == (
        (8000, 28, 28),
        (8000,),
        (2000, 28, 28),
        (2000,),
    )
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert y_train[:10].tolist() == FIRST_TRAIN_LABELS
    assert y_test[:10].tolist() == FIRST_TEST_LABELS
    assert set(np.unique(y_train).tolist()) == set(range(10))
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "bundled 10,000-image sample (CC BY-SA 3.0)" in err
    assert MNIST_ENV_VAR in err
    assert mnist_source() == BUNDLED


@pytest.mark.skipif(not (REAL_DIR / "mnist.npz").is_file(), reason="full MNIST not on this machine")
def test_bundled_sample_is_the_head_of_the_real_file() -> None:
    (x_train, y_train), (x_test, y_test) = load_mnist()
    with np.load(REAL_DIR / "mnist.npz") as real:
        np.testing.assert_array_equal(x_train, real["x_train"][:8000])
        np.testing.assert_array_equal(y_train, real["y_train"][:8000])
        np.testing.assert_array_equal(x_test, real["x_test"][:2000])
        np.testing.assert_array_equal(y_test, real["y_test"][:2000])


@pytest.mark.skipif(not (REAL_DIR / "mnist.npz").is_file(), reason="full MNIST not on this machine")
def test_full_mnist_from_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MNIST_ENV_VAR, str(REAL_DIR))
    (x_train, y_train), (x_test, y_test) = load_mnist()
    assert (x_train.shape, y_train.shape, x_test.shape, y_test.shape) == (
        (60000, 28, 28),
        (60000,),
        (10000, 28, 28),
        (10000,),
    )
    assert y_train[:10].tolist() == FIRST_TRAIN_LABELS
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_CLASS_COUNTS


# --- errors ------------------------------------------------------------------------------


def test_missing_path_is_not_a_silent_fallback(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"`path` must be an \.npz file .* does not exist"):
        load_mnist(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mnist_source(tmp_path / "nope")


def test_folder_without_data_names_what_is_missing(tmp_path: Path) -> None:
    folder = write_idx(tmp_path / "partial", fake_mnist(17))
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"missing: mnist\.npz, t10k-labels-idx1-ubyte\[\.gz\]\)"
    ):
        load_mnist(folder)


def test_npz_missing_key(tmp_path: Path) -> None:
    arrays = fake_mnist(18)
    del arrays["y_test"]
    file = write_npz(tmp_path, arrays)
    with pytest.raises(ValueError, match=r"must hold the keys .* \(missing \['y_test'\]\)"):
        load_mnist(file)


@pytest.mark.parametrize(
    ("key", "bad", "message"),
    [
        (
            "x_train",
            np.zeros((12, 28, 27), np.uint8),
            r"`x_train` .* shape \(n, 28, 28\), but got shape \(12, 28, 27\)",
        ),
        ("x_test", np.zeros((5, 28, 28), np.float32), r"`x_test` .* uint8 .* dtype float32"),
        ("y_train", np.zeros(11, np.uint8), r"`y_train` .* shape \(12,\), but got shape \(11,\)"),
        ("y_test", np.zeros((5, 1), np.uint8), r"`y_test` .* shape \(5,\), but got shape \(5, 1\)"),
    ],
)
def test_npz_bad_shape_or_dtype(
    tmp_path: Path, key: str, bad: npt.NDArray[np.generic], message: str
) -> None:
    arrays: dict[str, npt.NDArray[np.generic]] = dict(fake_mnist(19))
    arrays[key] = bad
    with pytest.raises(ValueError, match=message) as info:
        load_mnist(write_npz(tmp_path, arrays, name="bad.npz"))
    assert "bad.npz" in str(info.value)


def test_not_an_npz(tmp_path: Path) -> None:
    (tmp_path / "mnist.npz").write_bytes(b"not an archive")
    with pytest.raises(ValueError, match=r"must be a readable \.npz archive"):
        load_mnist(tmp_path)


def test_single_array_npy_is_rejected(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(ValueError, match=r"single array of shape \(3, 28, 28\)"):
        load_mnist(tmp_path / "x.npy")


def test_malformed_npz_in_env_dir_is_an_error_not_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 truncated")
    monkeypatch.setenv(MNIST_ENV_VAR, str(tmp_path))
    with pytest.raises(ValueError, match=r"mnist\.npz.* must be a readable \.npz archive"):
        load_mnist()


def test_idx_wrong_magic(tmp_path: Path) -> None:
    folder = write_idx(tmp_path, fake_mnist(20), gz=False)
    labels = fake_mnist(20)["y_train"]
    (folder / "train-images-idx3-ubyte").write_bytes(idx_bytes(labels, 2049))
    with pytest.raises(ValueError, match=r"IDX magic number 2051 .* but got 2049"):
        load_mnist(folder)


@pytest.mark.parametrize(
    ("keep", "extra", "message"),
    [(9407, b"", "got 9407 bytes"), (9408, b"\0", "got 9408 or more bytes")],
    ids=["truncated", "trailing"],
)
def test_idx_wrong_length(tmp_path: Path, keep: int, extra: bytes, message: str) -> None:
    arrays = fake_mnist(21)
    folder = write_idx(tmp_path, arrays, gz=False)
    data = idx_bytes(arrays["x_train"], 2051)[: 16 + keep] + extra
    (folder / "train-images-idx3-ubyte").write_bytes(data)
    with pytest.raises(ValueError, match=r"shape \(12, 28, 28\) \(9408 bytes\), but " + message):
        load_mnist(folder)


def test_idx_not_gzip(tmp_path: Path) -> None:
    folder = write_idx(tmp_path, fake_mnist(22))
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"plain bytes")
    with pytest.raises(ValueError, match="not a readable gzip file"):
        load_mnist(folder)


def test_idx_images_and_labels_disagree(tmp_path: Path) -> None:
    arrays = fake_mnist(23)
    arrays["y_test"] = arrays["y_test"][:4]
    with pytest.raises(
        ValueError, match=r"`y_test` in '.*t10k-labels.*' .* shape \(5,\), but got shape \(4,\)"
    ):
        load_mnist(write_idx(tmp_path, arrays))
