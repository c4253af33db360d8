"""Class-per-subfolder image loader on real PNG/JPEG files written here."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from xaibench.data import image_folder
from xaibench.data.image_folder import ImageFolderWarning
from xaibench.errors import ConfigError, DataError

COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


def _solid(colour, size=(40, 30), mode="RGB"):
    return Image.new("RGB", size, colour).convert(mode)


@pytest.fixture
def folder(tmp_path):
    """3 classes x 5 images (PNG, JPEG, RGBA/grey PNG, a nested one) plus junk files."""
    root = tmp_path / "monkeys"
    for name, colour in COLOURS.items():
        d = root / name
        (d / "nested").mkdir(parents=True)
        _solid(colour).save(d / "a.png")
        _solid(colour, (50, 70)).save(d / "b.jpg", quality=95)
        _solid(colour, mode="RGBA").save(d / "c.PNG")
        _solid(colour, (33, 33)).save(d / "d.jpeg", quality=95)
        _solid(colour).save(d / "nested" / "e.png")
    (root / "red" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "green" / "notes.txt").write_text("a text file among the images")
    (root / "blue" / ".DS_Store").write_bytes(b"\0\1")  # hidden: ignored silently
    (root / "labels.txt").write_text("n0 red\n")  # not inside a class folder
    return root


def _load(root, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = image_folder.load(root=str(root), **kwargs)
    return ds, [w for w in caught if issubclass(w.category, ImageFolderWarning)]


def test_loads_classes_and_reports_skipped_files(folder):
    ds, caught = _load(folder, size=16, test_fraction=0.2, seed=0)
    assert ds.name == "image_folder"
    assert ds.class_names == ("blue", "green", "red")  # sorted folder names
    assert ds.x_train.shape == (12, 16, 16, 3) and ds.x_test.shape == (3, 16, 16, 3)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    # stratified: one test image per class, four train images per class
    assert sorted(ds.y_test.tolist()) == [0, 1, 2]
    assert np.bincount(ds.y_train).tolist() == [4, 4, 4]
    # every image shows its class's colour
    for x, y in zip(np.concatenate([ds.x_train, ds.x_test]), np.concatenate([ds.y_train,
                                                                            ds.y_test])):
        expected = np.array(COLOURS[ds.class_names[y]]) / 255
        np.testing.assert_allclose(x.mean((0, 1)), expected, atol=0.03)

    assert len(caught) == 2
    message, mixed = (str(w.message) for w in caught)
    assert "3 different sizes (30x40, 33x33, 70x50) were all resized to 16x16" in mixed
    assert "skipped 3 file(s)" in message
    assert str(folder / "red" / "corrupt.jpg") + ": cannot decode image" in message
    assert str(folder / "green" / "notes.txt") + ": not a PNG/JPEG file" in message
    assert str(folder / "labels.txt") + ": not inside a class folder" in message
    assert ".DS_Store" not in message


def test_seeded_split_and_subsets(folder):
    a, _ = _load(folder, size=8, seed=1)
    b, _ = _load(folder, size=8, seed=1)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    orders = {tuple(_load(folder, size=8, seed=s)[0].y_train.tolist()) for s in range(6)}
    assert len(orders) > 1
    sub, _ = _load(folder, size=8, seed=1, n_train=5, n_test=2)
    np.testing.assert_array_equal(sub.x_train, a.x_train[:5])
    np.testing.assert_array_equal(sub.y_test, a.y_test[:2])
    none, _ = _load(folder, size=8, test_fraction=0.0)
    assert none.x_test.shape == (0, 8, 8, 3) and len(none.y_train) == 15


def test_size_and_grayscale(folder):
    ds, _ = _load(folder, size=(12, 20), grayscale=True)
    assert ds.x_train.shape[1:] == (12, 20, 1)
    assert ds.spec.shape == (12, 20, 1)
    ds, _ = _load(folder, size=[10, 6])  # a TOML list works too
    assert ds.x_train.shape[1:] == (10, 6, 3)


def test_sixteen_bit_png_is_scaled(tmp_path):
    for name, value in (("white", 65535), ("grey", 32768)):
        d = tmp_path / "root" / name
        d.mkdir(parents=True)
        Image.fromarray(np.full((8, 8), value, dtype=np.uint16)).save(d / f"{name}.png")
    ds, caught = _load(tmp_path / "root", size=4, grayscale=True, test_fraction=0.0)
    assert not caught
    assert sorted(np.round(ds.x_train.reshape(2, -1).mean(1), 2).tolist()) == [0.5, 1.0]


def test_missing_and_empty_roots(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="does not exist") as info:
        image_folder.load(root=str(missing))
    assert str(missing) in str(info.value)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="is empty") as info:
        image_folder.load(root=str(empty))
    assert str(empty) in str(info.value)

    file_root = tmp_path / "file.png"
    file_root.write_bytes(b"x")
    with pytest.raises(DataError, match="not a directory"):
        image_folder.load(root=str(file_root))


def test_class_folder_without_readable_images(tmp_path):
    root = tmp_path / "root"
    (root / "good").mkdir(parents=True)
    (root / "bad").mkdir()
    _solid((1, 2, 3)).save(root / "good" / "x.png")
    (root / "bad" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.warns(ImageFolderWarning, match="broken.png"):
        with pytest.raises(DataError, match="no readable PNG/JPEG image") as info:
            image_folder.load(root=str(root))
    assert str(root / "bad") in str(info.value)


def test_truncated_jpeg_and_wrong_format_are_skipped(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    _solid((9, 9, 9), (64, 64)).save(root / "a" / "ok.jpg")
    data = (root / "a" / "ok.jpg").read_bytes()
    (root / "a" / "cut.jpg").write_bytes(data[: len(data) // 2])
    _solid((9, 9, 9)).save(root / "a" / "anim.png", format="GIF")
    (root / "b").mkdir()
    _solid((1, 1, 1), (64, 64)).save(root / "b" / "ok.jpg")
    ds, caught = _load(root, size=8, test_fraction=0.0)
    assert len(ds.y_train) == 2
    message = str(caught[0].message)
    assert "cut.jpg: cannot decode image" in message
    assert "anim.png: cannot decode image: ValueError: file content is GIF" in message


def test_bad_parameters(folder):
    for kwargs in ({"size": 0}, {"size": (3,)}, {"size": "64"}, {"test_fraction": 1.0},
                   {"test_fraction": -0.1}, {"n_train": 100}):
        with pytest.raises(ConfigError):
            _load(folder, **kwargs)
