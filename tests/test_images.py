"""ImageFileSequence and the decoders, on real JPEG/PNG/GIF/BMP files written per test session."""

from __future__ import annotations

import importlib.util
import logging
import pickle
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from feeders.images import (
    DECODERS,
    ImageDecodeError,
    ImageFileSequence,
    ImageTooLargeError,
    _shared,
    decode,
    tf_decode_fn,
)
from feeders.images.samples import write_photos
from tests import image_files

HAS_SIMPLEJPEG = importlib.util.find_spec("simplejpeg") is not None
HAS_OPENCV = importlib.util.find_spec("cv2") is not None
SIMPLEJPEG = pytest.param(
    "simplejpeg",
    marks=pytest.mark.skipif(not HAS_SIMPLEJPEG, reason="needs the fastjpeg extra"),
)
OPENCV = pytest.param(
    "opencv", marks=pytest.mark.skipif(not HAS_OPENCV, reason="needs the opencv extra")
)
FAST_DECODERS = ["pil", "tf", SIMPLEJPEG, OPENCV]
ALL_DECODERS = [*FAST_DECODERS, "skimage"]
SIZES = [(200, 200), (96, 128), (300, 256)]  # square down, non-square down, partly up
# Tolerance vs the "skimage" reference, per image (measured maxima: 0.010, 0.066, 0.322).
MEAN_TOL, P99_TOL, MAX_TOL = 0.02, 0.1, 0.4


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """One file per (format, mode) in image_files.KINDS."""
    return image_files.write_kinds(tmp_path_factory.mktemp("kinds"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """23 small JPEG/PNG photos; label i belongs to file i (so a batch's labels say its files)."""
    root = tmp_path_factory.mktemp("photos")
    paths = write_photos(root, 23, sizes=(40, 90), formats=("jpeg", "png"), modes=("RGB", "L"))
    paths[3] = paths[3].rename(root / "café ünïcode 3.png")  # names need not be ASCII
    return [str(p) for p in paths]


def make(files: list[str], labels: object = None, **kwargs: object) -> ImageFileSequence:
    options: dict[str, object] = {"batch_size": 5, "image_size": (24, 32), "decoder": "pil"}
    options.update(kwargs)
    return ImageFileSequence(files, labels, **options)  # type: ignore[arg-type]


# --- decoders -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", ALL_DECODERS)
def test_decoder_output_is_float32_unit_range_at_image_size(
    kinds: list[Path], name: str, size: tuple[int, int]
) -> None:
    for path in kinds:
        image = DECODERS[name](str(path), size)
        assert image.shape == (*size, 3)
        assert image.dtype == np.float32
        assert image.min() >= 0.0 and image.max() <= 1.0
        assert image.std() > 0.02  # a real photo, not a blank


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", FAST_DECODERS)
def test_decoders_match_skimage_reference(
    kinds: list[Path], name: str, size: tuple[int, int]
) -> None:
    for path in kinds:
        diff = np.abs(DECODERS[name](str(path), size) - decode.decode_skimage(str(path), size))
        assert diff.mean() <= MEAN_TOL, path.name
        assert np.percentile(diff, 99) <= P99_TOL, path.name
        assert diff.max() <= MAX_TOL, path.name


@pytest.mark.parametrize("name", ALL_DECODERS)
def test_uint8_output_is_the_float_output_times_255(kinds: list[Path], name: str) -> None:
    for path in kinds:
        image = DECODERS[name](str(path), (40, 50))
        pixels = DECODERS[name](str(path), (40, 50), out=np.empty((40, 50, 3), np.uint8))
        assert pixels.dtype == np.uint8
        # uint8-first decoders divide once (exact); float ones (skimage, tf) round once.
        assert np.abs(pixels / np.float32(255) - image).max() <= 0.5 / 255 + 1e-6, path.name


@pytest.mark.skipif(not HAS_OPENCV, reason="needs the opencv extra")
def test_opencv_decodes_jpegs_at_a_reduced_dct_scale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import simplejpeg

    path = str(write_photos(tmp_path, 1, sizes=(480, 480))[0])
    decoded: list[tuple[int, ...]] = []
    decode_jpeg = simplejpeg.decode_jpeg

    def recording(*args: object, **kwargs: object) -> np.ndarray:
        image = decode_jpeg(*args, **kwargs)
        decoded.append(image.shape)
        return image

    monkeypatch.setattr(simplejpeg, "decode_jpeg", recording)
    assert decode.decode_opencv(path, (100, 100)).shape == (100, 100, 3)
    assert decoded == [(120, 120, 3)]  # 1/4 scale; 1/8 would be under 100 px


@pytest.mark.skipif(not HAS_OPENCV, reason="needs the opencv extra")
def test_opencv_fast_dct_stays_close_to_the_accurate_one(kinds: list[Path]) -> None:
    batch = np.zeros((2, 96, 128, 3), np.uint8)
    for path in kinds:
        fast = decode.decode_opencv(str(path), (96, 128), out=batch[0])
        accurate = decode.decode_opencv(str(path), (96, 128), out=batch[1], fast=False)
        assert np.shares_memory(fast, batch[0]) and np.shares_memory(accurate, batch[1])
        assert np.abs(batch[0].astype(np.int16) - batch[1]).mean() <= 1.0, path.name


@pytest.mark.parametrize("name", FAST_DECODERS)
def test_decoders_ignore_exif_orientation_like_the_reference(tmp_path: Path, name: str) -> None:
    source = write_photos(tmp_path, 1, sizes=(120, 120))[0]
    rotated = tmp_path / "rotated.jpg"
    with Image.open(source) as image:
        exif = image.getexif()
        exif[0x0112] = 6  # "rotate 90 CW to display"
        image.crop((0, 0, 120, 80)).save(rotated, exif=exif, quality=95)
    image = DECODERS[name](str(rotated), (40, 60))
    diff = np.abs(image - decode.decode_skimage(str(rotated), (40, 60)))
    assert diff.mean() <= MEAN_TOL


def test_skimage_decoder_is_the_keras_guide_resize_of_imread(kinds: list[Path]) -> None:
    from skimage.io import imread
    from skimage.transform import resize

    path = str(kinds[0])  # RGB JPEG: the guide's case
    np.testing.assert_allclose(
        decode.decode_skimage(path, (200, 200)), resize(imread(path), (200, 200)), atol=1e-6
    )


def test_pil_decoder_uses_reduced_dct_scale_for_large_jpegs(tmp_path: Path) -> None:
    path = write_photos(tmp_path, 1, sizes=(480, 480))[0]
    with Image.open(path) as image:
        assert _shared.pil_resized(image, (100, 100)).shape == (100, 100, 3)
        assert image.size == (120, 120)  # decoded at 1/4 scale; 1/8 would be under 100 px
    # simplejpeg, OpenCV and the TF path follow the same rule
    assert _shared.draft_scale(480, 480, (100, 100)) == 4
    assert _shared.draft_scale(480, 199, (100, 100)) == 1  # the shorter side decides


def test_decoder_writes_into_out_and_checks_its_shape(kinds: list[Path]) -> None:
    batch = np.zeros((2, 20, 30, 3), np.float32)
    result = decode.decode_pil(str(kinds[0]), (20, 30), out=batch[1])
    assert np.shares_memory(result, batch) and batch[1].any() and not batch[0].any()
    with pytest.raises(
        ValueError, match=r"`out` must be float32 or uint8 with shape \(20, 30, 3\), but got "
    ):
        decode.decode_pil(str(kinds[0]), (20, 30), out=np.zeros((20, 30, 3), np.float64))


def test_tf_decode_fn_in_a_tf_data_map_equals_tf_decoder(kinds: list[Path]) -> None:
    import tensorflow as tf

    files = [str(p) for p in kinds]
    dataset = tf.data.Dataset.from_tensor_slices(files).map(tf_decode_fn((50, 60))).batch(4)
    images = np.concatenate([b.numpy() for b in dataset])
    expected = np.stack([decode.decode_tf(f, (50, 60)) for f in files])
    np.testing.assert_allclose(images, expected, atol=1e-6)


def test_tf_header_sizes_match_pil_for_every_format(kinds: list[Path], tmp_path: Path) -> None:
    import tensorflow as tf

    from feeders.images.tf_decode import image_shape

    webps = image_files.write_webps(tmp_path, kinds[0])
    assert [Path(p).read_bytes()[12:16] for p in webps] == [b"VP8 ", b"VP8L", b"VP8X"]
    for path in [*kinds, *webps]:
        with Image.open(path) as image:
            expected = [image.height, image.width]
        assert image_shape(tf.io.read_file(str(path))).numpy().tolist() == expected, path.name
    assert image_shape(tf.constant(b"not an image")).numpy().tolist() == [-1, -1]


def test_simplejpeg_missing_names_the_extra(
    kinds: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "simplejpeg", None)
    with pytest.raises(ImportError, match=r"feeders\[fastjpeg\]"):
        decode.decode_simplejpeg(str(kinds[0]), (50, 50))
    with pytest.raises(ImportError, match=r"feeders\[fastjpeg\]"):
        decode.resolve_decoder("simplejpeg")


def test_opencv_missing_names_the_extra(kinds: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(ImportError, match=r"feeders\[opencv\]"):
        decode.decode_opencv(str(kinds[0]), (50, 50))
    with pytest.raises(ImportError, match=r"feeders\[opencv\]"):
        ImageFileSequence([str(kinds[0])], decoder="opencv")


@pytest.mark.parametrize(
    ("missing", "expected"),
    [((), "opencv"), (("cv2",), "simplejpeg"), (("cv2", "simplejpeg"), "pil")],
)
def test_auto_picks_the_first_importable_decoder(
    monkeypatch: pytest.MonkeyPatch, missing: tuple[str, ...], expected: str
) -> None:
    pytest.importorskip("cv2")
    pytest.importorskip("simplejpeg")
    for module in missing:
        monkeypatch.setitem(sys.modules, module, None)
    assert decode.resolve_decoder("auto") == expected


# --- batches, labels, order -------------------------------------------------------------------


def test_batches_have_exact_shapes_and_a_partial_last_batch(photos: list[str]) -> None:
    seq = make(photos, np.arange(23))
    assert len(seq) == 5
    x, y = seq[0]
    assert x.shape == (5, 24, 32, 3) and x.dtype == np.float32 and y.shape == (5,)
    assert seq[4][0].shape == (3, 24, 32, 3)
    assert seq[-1][0].shape == (3, 24, 32, 3)


@pytest.mark.parametrize("name", ALL_DECODERS)
def test_labels_follow_their_files_through_shuffling(photos: list[str], name: str) -> None:
    seq = make(photos, np.arange(23), shuffle=True, seed=3, decoder=name)
    x, y = seq[1]
    assert not np.array_equal(y, np.arange(5, 10))
    for image, label in zip(x, y, strict=True):
        np.testing.assert_array_equal(image, DECODERS[name](photos[label], (24, 32)))


def test_every_file_exactly_once_per_epoch(photos: list[str]) -> None:
    seq = make(photos, np.arange(23), shuffle=True, seed=0)
    for _ in range(3):
        labels = np.concatenate([seq[i][1] for i in range(len(seq))])
        np.testing.assert_array_equal(np.sort(labels), np.arange(23))
        seq.on_epoch_end()


def test_order_is_seeded_by_seed_and_epoch(photos: list[str]) -> None:
    a, b = make(photos, shuffle=True, seed=7), make(photos, shuffle=True, seed=7)
    np.testing.assert_array_equal(a.order, b.order)
    assert not np.array_equal(a.order, make(photos, shuffle=True, seed=8).order)
    first = a.order.copy()
    a.on_epoch_end()
    assert a.epoch == 1 and not np.array_equal(a.order, first)
    b.set_epoch(1)
    np.testing.assert_array_equal(a.order, b.order)
    np.testing.assert_array_equal(make(photos, shuffle=False).order, np.arange(23))


def test_multi_output_labels_share_the_batch_indices(photos: list[str]) -> None:
    ids = np.arange(23)
    onehot = np.eye(23, dtype=np.float32)
    seq = make(photos, {"id": ids, "onehot": onehot}, shuffle=True, seed=1)
    _, y = seq[2]
    np.testing.assert_array_equal(y["onehot"], onehot[y["id"]])
    _, listed = make(photos, [ids, onehot], shuffle=True, seed=1)[2]
    assert isinstance(listed, list)
    np.testing.assert_array_equal(listed[1], onehot[listed[0]])


def test_no_labels_yields_x_only(photos: list[str]) -> None:
    x = make(photos)[0]
    assert isinstance(x, np.ndarray) and x.shape == (5, 24, 32, 3)


def test_pickle_round_trip_gives_identical_batches_and_is_small(photos: list[str]) -> None:
    seq = make(photos, np.arange(23), shuffle=True, seed=5)
    seq.on_epoch_end()
    _ = seq.order
    data = pickle.dumps(seq)
    copy = pickle.loads(data)
    assert len(data) < 2_000 + 100 * len(photos)
    assert copy.epoch == 1
    for i in range(len(seq)):
        np.testing.assert_array_equal(copy[i][0], seq[i][0])
        np.testing.assert_array_equal(copy[i][1], seq[i][1])


def test_to_tf_dataset_matches_the_tf_decoder_sequence(photos: list[str]) -> None:
    seq = make(photos, np.arange(23), shuffle=True, seed=2, decoder="tf")
    batches = list(seq.to_tf_dataset(epoch=1))
    assert seq.epoch == 1 and len(batches) == len(seq)
    for i, (x, y) in enumerate(batches):
        expected_x, expected_y = seq[i]
        np.testing.assert_array_equal(y.numpy(), expected_y)
        np.testing.assert_allclose(x.numpy(), expected_x, atol=1e-6)


def test_to_tf_dataset_uint8_matches_the_uint8_sequence(photos: list[str]) -> None:
    seq = make(photos, np.arange(23), decoder="tf", dtype="uint8")
    for i, (x, _) in enumerate(seq.to_tf_dataset()):
        assert x.dtype == "uint8"
        np.testing.assert_array_equal(x.numpy(), seq[i][0])


@pytest.mark.parametrize(("size", "ratio"), [((200, 200), 2), ((100, 100), 4), ((50, 60), 8)])
def test_tf_path_decodes_jpegs_at_a_reduced_dct_scale(
    tmp_path: Path, size: tuple[int, int], ratio: int
) -> None:
    import tensorflow as tf

    from feeders.images import tf_decode

    contents = tf.io.read_file(str(write_photos(tmp_path, 1, sizes=(480, 480))[0]))
    scaled = tf_decode._scaled_jpeg(contents, tf_decode._jpeg_shape(contents), size)
    np.testing.assert_array_equal(scaled, tf.io.decode_jpeg(contents, channels=3, ratio=ratio))
    assert scaled.shape == (480 // ratio, 480 // ratio, 3)


def test_keras_fit_runs_it_and_advances_the_epoch(photos: list[str]) -> None:
    seq = make(photos, np.arange(23) % 2, shuffle=True, seed=0, image_size=(16, 16))
    model = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)]
    )
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(seq, epochs=2, verbose=0)
    # Keras 3 calls on_epoch_end once when fit starts (EpochIterator.reset), then per epoch.
    assert seq.epoch == 3


def test_uint8_batches_through_the_process_pool_train_with_a_rescaling_layer(
    photos: list[str],
) -> None:
    import feeders

    seq = make(photos, np.arange(23) % 2, image_size=(16, 16), dtype="uint8", shuffle=True)
    expected = [seq[i] for i in range(len(seq))]
    with feeders.adapt(seq, workers=2, use_multiprocessing=True, shuffle=False) as feeder:
        batches = list(feeder.epoch(0))
        assert [x.dtype for x, _, _ in batches] == [np.uint8] * len(seq)
        for (x, y, _), (ex, ey) in zip(batches, expected, strict=True):
            np.testing.assert_array_equal(x, ex)
            np.testing.assert_array_equal(y, ey)
        model = keras.Sequential(
            [
                keras.Input((16, 16, 3)),
                keras.layers.Rescaling(1 / 255),
                keras.layers.GlobalAveragePooling2D(),
                keras.layers.Dense(2),
            ]
        )
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(feeder, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


# --- from_directory ---------------------------------------------------------------------------


def test_from_directory_indexes_sorted_classes_and_files(tmp_path: Path) -> None:
    write_photos(tmp_path / "dog", 2, sizes=(30, 40), prefix="d")
    write_photos(tmp_path / "cat" / "nested", 1, sizes=(30, 40), formats=("png",), prefix="n")
    write_photos(tmp_path / "cat", 2, sizes=(30, 40), prefix="c")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "cat" / "c000000.jpg").rename(tmp_path / "cat" / "C000000.JPG")
    (tmp_path / "empty").mkdir()
    seq = ImageFileSequence.from_directory(tmp_path, batch_size=4, image_size=(20, 20))
    assert seq.class_names == ["cat", "dog", "empty"]
    names = [str(Path(f).relative_to(tmp_path)) for f in seq.files]
    assert names == [
        "cat/C000000.JPG",
        "cat/c000001.jpg",
        "cat/nested/n000000.png",
        "dog/d000000.jpg",
        "dog/d000001.jpg",
    ]
    np.testing.assert_array_equal(np.concatenate([seq[0][1], seq[1][1]]), [0, 0, 0, 1, 1])


def test_from_directory_passes_options_through(tmp_path: Path) -> None:
    write_photos(tmp_path / "a", 3, sizes=(30, 40))
    seq = ImageFileSequence.from_directory(
        tmp_path, batch_size=2, image_size=(8, 8), shuffle=True, seed=4, decoder="tf"
    )
    assert (seq.shuffle, seq.seed, seq.decoder, len(seq)) == (True, 4, "tf", 2)


@pytest.mark.parametrize(
    ("layout", "error", "match"),
    [
        ("missing", FileNotFoundError, r"`root` must be an existing directory.*does not exist"),
        ("file", NotADirectoryError, r"`root` must be a directory.*which is a file"),
        ("flat", ValueError, r"one sub-folder per class.*has no sub-folders"),
        ("no_images", ValueError, r"hold image files \(\.jpg.*the 1 sub-folders"),
    ],
)
def test_from_directory_errors(tmp_path: Path, layout: str, error: type, match: str) -> None:
    write_photos(tmp_path / "flat", 1, sizes=(30, 30))
    (tmp_path / "file").write_text("x")
    (tmp_path / "no_images" / "a").mkdir(parents=True)
    (tmp_path / "no_images" / "a" / "x.txt").write_text("x")
    with pytest.raises(error, match=match):
        ImageFileSequence.from_directory(tmp_path / layout, batch_size=2, image_size=(8, 8))


# --- argument errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"labels": np.arange(3)}, ValueError, r"len\(files\)=23 and len\(labels\)=3"),
        ({"labels": {"a": np.arange(23), "b": np.arange(2)}}, ValueError, r"labels\['b'\]"),
        ({"labels": 3}, ValueError, r"`labels` must have one row per file.*a scalar"),
        ({"labels": np.array([None] * 23)}, TypeError, r"`labels` must be numeric"),
        ({"batch_size": 0}, ValueError, r"`batch_size` should be a positive integer.*batch_size=0"),
        ({"batch_size": True}, ValueError, r"batch_size=True"),
        ({"batch_size": 2.5}, ValueError, r"batch_size=2.5"),
        ({"image_size": (0, 5)}, ValueError, r"`image_size` must be positive.*\(0, 5\)"),
        ({"image_size": (200,)}, TypeError, r"`image_size` must be a \(height, width\) pair"),
        ({"image_size": (20.0, 20)}, TypeError, r"pair of ints, but got image_size=\(20.0, 20\)"),
        (
            {"decoder": "cv2"},
            ValueError,
            r"one of \['auto', 'pil', 'skimage', 'tf', 'simplejpeg', 'opencv'\], but got "
            r"decoder='cv2'",
        ),
        ({"dtype": "float16"}, ValueError, r"`dtype` must be 'float32' .* or 'uint8' .*float16"),
        ({"dtype": "rgb"}, ValueError, r"`dtype` must be .* but got dtype='rgb'"),
        ({"on_error": "ignore"}, ValueError, r"`on_error` must be 'raise' or 'skip'"),
        ({"max_pixels": 0}, ValueError, r"`max_pixels` must be a positive int"),
        ({"max_pixels": 1.5}, TypeError, r"`max_pixels` must be a positive int, but got float"),
        ({"max_pixels": 10**12}, ValueError, r"at most PIL.Image.MAX_IMAGE_PIXELS"),
    ],
)
def test_bad_arguments(
    photos: list[str], kwargs: dict[str, object], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        make(photos, **kwargs)


@pytest.mark.parametrize(
    ("files", "error", "match"),
    [
        ([], ValueError, r"`files` must not be empty, but got len\(files\)=0"),
        ("photos/", TypeError, r"single path str.*from_directory"),
        ({"a": 1}, TypeError, r"`files` must be a sequence of paths, but got dict"),
        (["a.jpg", 3], TypeError, r"files\[1\] is int"),
    ],
)
def test_bad_files_argument(files: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make(files)  # type: ignore[arg-type]


def test_bad_index_and_epoch(photos: list[str]) -> None:
    seq = make(photos)
    with pytest.raises(IndexError, match=r"must be in \[0, 5\), but got index=5"):
        seq[5]
    with pytest.raises(TypeError, match=r"Batch `index` must be an int, but got str"):
        seq["0"]  # type: ignore[index]
    with pytest.raises(ValueError, match=r"`epoch` must be a non-negative int.*epoch=-1"):
        seq.set_epoch(-1)


def test_to_tf_dataset_refuses_skip_mode(photos: list[str]) -> None:
    with pytest.raises(ValueError, match=r"needs on_error='raise'"):
        make(photos, on_error="skip").to_tf_dataset()


# --- bad files ----------------------------------------------------------------------------------


@pytest.fixture
def broken(tmp_path: Path, photos: list[str]) -> dict[str, str]:
    return {
        "truncated JPEG": str(image_files.truncated(Path(photos[0]), tmp_path / "t.jpg")),
        "truncated PNG": str(image_files.truncated(Path(photos[1]), tmp_path / "t.png")),
        "garbage": str(image_files.garbage(tmp_path / "g.jpg")),
        "missing": str(tmp_path / "missing.jpg"),
    }


@pytest.mark.parametrize("kind", ["truncated JPEG", "truncated PNG", "garbage", "missing"])
@pytest.mark.parametrize("name", ALL_DECODERS)
def test_bad_file_error_names_file_and_batch(
    photos: list[str], broken: dict[str, str], name: str, kind: str
) -> None:
    files = [*photos[:7], broken[kind], *photos[7:]]
    seq = make(files, decoder=name)
    seq[0]
    with pytest.raises(
        ImageDecodeError, match=rf"Cannot decode image file '{broken[kind]}' \(batch 1,"
    ) as info:
        seq[1]
    assert info.value.__cause__ is not None


def test_skip_mode_drops_counts_and_reports(
    photos: list[str], broken: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    files = [*photos[:6], broken["garbage"], broken["truncated PNG"], *photos[6:]]
    seq = make(files, np.arange(len(files)), on_error="skip")
    x, y = seq[1]
    assert x.shape == (3, 24, 32, 3)
    np.testing.assert_array_equal(y, [5, 8, 9])
    np.testing.assert_array_equal(x[1], decode.decode_pil(files[8], (24, 32)))
    assert [(s.path, s.batch, s.epoch) for s in seq.skipped] == [
        (broken["garbage"], 1, 0),
        (broken["truncated PNG"], 1, 0),
    ]
    with caplog.at_level(logging.WARNING, logger="feeders.images.files"):
        seq.on_epoch_end()
    assert "skipped 2 unreadable file(s) in epoch 0" in caplog.text


def test_a_worker_copy_reports_each_skip_itself(
    photos: list[str], broken: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    import pickle

    files = [*photos[:6], broken["garbage"], *photos[6:]]
    worker_copy = pickle.loads(pickle.dumps(make(files, np.arange(len(files)), on_error="skip")))
    worker_copy._owner_pid = -1  # as in a worker process
    with caplog.at_level(logging.WARNING, logger="feeders.images.files"):
        worker_copy[1]
    assert f"Skipping {broken['garbage']} (batch 1, epoch 0)" in caplog.text


def test_skip_mode_refuses_a_batch_with_nothing_left(broken: dict[str, str]) -> None:
    seq = make([broken["garbage"], broken["missing"]], on_error="skip")
    with pytest.raises(ImageDecodeError, match=r"Every file of batch 0 \(epoch 0\) failed"):
        seq[0]


# --- decompression bombs ------------------------------------------------------------------------


@pytest.fixture
def bombs(tmp_path: Path, kinds: list[Path]) -> dict[str, str]:
    png = next(p for p in kinds if p.suffix == ".png")
    return {
        "png": str(image_files.png_bomb(png, tmp_path / "bomb.png")),
        # 10^8 pixels: over PIL's limit, under twice it, where PIL only warns.
        "png, PIL warns": str(image_files.png_bomb(png, tmp_path / "warn.png", side=10_000)),
        "jpeg": str(image_files.jpeg_bomb(kinds[0], tmp_path / "bomb.jpg")),
    }


@pytest.mark.parametrize("fmt", ["png", "png, PIL warns", "jpeg"])
@pytest.mark.parametrize("name", ALL_DECODERS)
def test_decompression_bomb_is_refused_by_every_decoder(
    bombs: dict[str, str], name: str, fmt: str
) -> None:
    with pytest.raises(ImageTooLargeError, match=r"possible decompression bomb|exceeds limit"):
        DECODERS[name](bombs[fmt], (50, 50))


def test_bomb_over_pils_limit_is_refused_without_warnings_as_errors(bombs: dict[str, str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ImageTooLargeError, match=r"more than max_pixels="):
            decode.decode_pil(bombs["png, PIL warns"], (50, 50))


@pytest.mark.parametrize("name", ALL_DECODERS)
def test_max_pixels_refuses_normal_images_over_the_limit(kinds: list[Path], name: str) -> None:
    with pytest.raises(ImageTooLargeError, match=r"more than max_pixels=1,000") as info:
        DECODERS[name](str(kinds[0]), (50, 50), max_pixels=1_000)
    assert isinstance(info.value, ValueError) and isinstance(
        info.value, Image.DecompressionBombError
    )


def test_bomb_is_refused_even_in_skip_mode(photos: list[str], bombs: dict[str, str]) -> None:
    seq = make([*photos[:3], bombs["png"]], on_error="skip")
    with pytest.raises(
        ImageTooLargeError, match=r"Batch 0, epoch 0: Refusing to decode '.*bomb.png'"
    ):
        seq[0]


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_tf_decode_fn_refuses_bombs_in_graph_mode(bombs: dict[str, str], fmt: str) -> None:
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices([bombs[fmt]]).map(tf_decode_fn((50, 50)))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"decompression bomb"):
        next(iter(dataset))
