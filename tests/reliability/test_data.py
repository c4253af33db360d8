"""Bad data: every problem with a dataset file, a download, an image folder or an image array is
an error (or, where the data is still usable, one warning) that names the problem and the fix."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from tests.unit.data._fashion import (fake_files, isolated_search_dirs, use_fake_checksums,
                                     write_files)
from tests.unit.data.conftest import file_server  # noqa: F401 - a fixture
from xaibench.data import fashion_mnist as fm
from xaibench.data import image_folder
from xaibench.data.base import Dataset
from xaibench.data.image_folder import ImageFolderWarning
from xaibench.errors import DataError

REFETCH = r" — delete the file and run `xaibench data fetch fashion-mnist` to download it again"
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"


# --- Fashion-MNIST files ------------------------------------------------------------------------
@pytest.fixture
def fashion(tmp_path, monkeypatch):
    """Valid fake files (and their checksums) in the $XAIBENCH_DATA folder; returns the files
    and a function that damages one and writes them again."""
    folder = isolated_search_dirs(tmp_path, monkeypatch)["data"]
    files = fake_files(7)
    use_fake_checksums(monkeypatch, files)

    def damage(name: str, data: bytes, *, update_checksums: bool = False) -> str:
        bad = {**files, name: data}
        if update_checksums:
            use_fake_checksums(monkeypatch, bad)
        write_files(folder, bad)
        return str(folder / name)

    return files, damage


def test_truncated_gzip(fashion):
    files, damage = fashion
    path = damage(TRAIN_IMAGES, files[TRAIN_IMAGES][:-20])
    with pytest.raises(DataError, match=rf"corrupt gzip data: file is truncated .*{REFETCH}") \
            as info:
        fm.load()
    assert path in str(info.value)


def test_corrupt_gzip(fashion):
    files, damage = fashion
    data = bytearray(files[TRAIN_IMAGES])
    data[len(data) // 2] ^= 0xFF
    path = damage(TRAIN_IMAGES, bytes(data))
    with pytest.raises(DataError, match=rf"{path}: corrupt gzip data: .*{REFETCH}"):
        fm.load()


def test_wrong_idx_magic(fashion):
    files, damage = fashion
    path = damage("train-labels-idx1-ubyte.gz", files[TRAIN_IMAGES], update_checksums=True)
    with pytest.raises(DataError, match=rf"{path}: wrong IDX magic number 0x00000803 \(ubyte "
                                        rf"images, 3 dimensions\), expected 0x00000801 \(ubyte "
                                        rf"labels, 1 dimension\).*{REFETCH}"):
        fm.load()


def test_checksum_mismatch_of_a_local_file(fashion):
    _files, damage = fashion
    path = damage(TRAIN_IMAGES, fake_files(8)[TRAIN_IMAGES])  # valid IDX, other content
    with pytest.raises(DataError, match=rf"{path}: checksum mismatch: the file is not the "
                                        rf"official {TRAIN_IMAGES}{REFETCH}"):
        fm.load()
    with pytest.raises(DataError, match=rf"{path}: checksum mismatch.*{REFETCH}"):
        fm.fetch()  # a found folder is verified, not downloaded into


def test_checksum_mismatch_on_download_removes_the_file(tmp_path, monkeypatch,
                                                        file_server):  # noqa: F811
    cache = isolated_search_dirs(tmp_path, monkeypatch)["cache"]
    files = fake_files(7)
    use_fake_checksums(monkeypatch, files)
    for name, data in files.items():
        file_server.serve(name, data)
    file_server.serve(TRAIN_IMAGES, b"an error page from a proxy")
    monkeypatch.setattr(fm, "BASE_URL", file_server.url + "/")
    with pytest.raises(DataError, match=rf"{cache / TRAIN_IMAGES}: checksum mismatch for "
                                        rf"download from .*the downloaded file was deleted\. "
                                        rf"Run again; if it persists .*place it at "):
        fm.fetch()
    assert not (cache / TRAIN_IMAGES).exists()
    assert not list(cache.glob("*.part"))


# --- image folders ------------------------------------------------------------------------------
def _image(path, size=(10, 10), mode="RGB", colour=(200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).convert(mode).save(path)


def _load(root, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = image_folder.load(root=str(root), size=8, test_fraction=0.0, **kwargs)
    return dataset, [str(w.message) for w in caught if issubclass(w.category, ImageFolderWarning)]


def test_unreadable_images_are_reported_and_skipped(tmp_path):
    _image(tmp_path / "a" / "ok.png")
    _image(tmp_path / "b" / "ok.png")
    (tmp_path / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    dataset, caught = _load(tmp_path)
    assert len(dataset.y_train) == 2
    assert len(caught) == 1 and f"{tmp_path}: skipped 1 file(s)" in caught[0]
    assert f"{tmp_path / 'b' / 'broken.png'}: cannot decode image: " in caught[0]


def test_empty_class_folder(tmp_path):
    _image(tmp_path / "a" / "ok.png")
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match=rf"no readable PNG/JPEG image in class folder\(s\) "
                                        rf"{tmp_path / 'b'}; add images to each class folder or "
                                        rf"remove the empty ones"):
        image_folder.load(root=str(tmp_path))


def test_single_class(tmp_path):
    _image(tmp_path / "cats" / "1.png")
    _image(tmp_path / "cats" / "2.png")
    with pytest.raises(DataError, match=r"has a single class folder \(cats\): a classifier needs "
                                        r"at least 2 classes; add one subfolder of images per "
                                        r"class"):
        image_folder.load(root=str(tmp_path))


def test_mixed_sizes_are_resized_with_one_warning(tmp_path):
    _image(tmp_path / "a" / "1.png", (10, 10))
    _image(tmp_path / "a" / "2.png", (30, 20))
    _image(tmp_path / "b" / "1.png", (10, 10))
    dataset, caught = _load(tmp_path)
    assert dataset.x_train.shape == (3, 8, 8, 3)
    assert caught == [f"image folder {tmp_path}: 2 different sizes (10x10, 20x30) were all "
                      f"resized to 8x8 (stretched) (choose with the size and grayscale "
                      f"parameters)"]


@pytest.mark.parametrize("grayscale, into, channels", [(False, "RGB", 3),
                                                       (True, "greyscale", 1)])
def test_mixed_grey_and_colour_are_converted_with_one_warning(tmp_path, grayscale, into,
                                                              channels):
    _image(tmp_path / "a" / "1.png", mode="L")
    _image(tmp_path / "a" / "2.png", mode="RGB")
    _image(tmp_path / "b" / "1.png", mode="L")
    dataset, caught = _load(tmp_path, grayscale=grayscale)
    assert dataset.x_train.shape == (3, 8, 8, channels)
    assert caught == [f"image folder {tmp_path}: 2 greyscale and 1 colour images were all "
                      f"converted to {into} (choose with the size and grayscale parameters)"]


def test_uniform_folder_gives_no_warning(tmp_path):
    for name in ("a/1.png", "a/2.png", "b/1.png"):
        _image(tmp_path / name, (20, 20))
    assert _load(tmp_path)[1] == []


# --- image arrays (Python API) ------------------------------------------------------------------
def _dataset(**changes) -> Dataset:
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.random((6, 4, 4, 1), dtype=np.float32),
              "y_train": np.array([0, 1, 0, 1, 0, 1]),
              "x_test": rng.random((3, 4, 4, 1), dtype=np.float32), "y_test": np.array([1, 0, 1])}
    return Dataset(name="mine", class_names=("a", "b"), **{**arrays, **changes})


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_images(bad):
    x = _dataset().x_train.copy()
    x[4, 1, 1, 0] = bad
    with pytest.raises(DataError, match=r"dataset 'mine', x_train: 1 pixel values are NaN or "
                                        r"infinite, in 1 of 6 images \(first: image 4\); images "
                                        r"must be finite: repair or drop those images"):
        _dataset(x_train=x)


def test_images_outside_the_value_range():
    x = (_dataset().x_test * 255).astype(np.uint8)
    with pytest.raises(DataError, match=r"dataset 'mine', x_test: \d+ pixel values lie outside "
                                        r"the declared value range \[0, 1\].*divide by 255"):
        _dataset(x_test=x)


def test_labels_that_name_no_class():
    with pytest.raises(DataError, match=r"y_test must hold 3 integer labels in 0\.\.1; got "
                                        r"int64 of shape \(3,\) in 0\.\.2"):
        _dataset(y_test=np.array([0, 1, 2]))
    with pytest.raises(DataError, match=r"y_train must hold 6 integer labels"):
        _dataset(y_train=np.zeros(6, np.float32))
