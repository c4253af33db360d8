"""IDX reader: real-format files written byte by byte here, plain and gzip, and corrupt ones."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from xaibench.data import _idx
from xaibench.errors import DataError


def idx_images(images: np.ndarray) -> bytes:
    """The IDX3 ubyte encoding of (N, H, W) uint8, as in the MNIST spec."""
    n, h, w = images.shape
    return struct.pack(">IIII", 0x00000803, n, h, w) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x00000801, len(labels)) + labels.astype(np.uint8).tobytes()


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(5, 4, 3), dtype=np.uint8)


@pytest.fixture
def labels():
    return np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], dtype=np.uint8)


@pytest.mark.parametrize("compress", [False, True])
def test_reads_images_and_labels(tmp_path, images, labels, compress):
    suffix, encode = (".gz", gzip.compress) if compress else ("", lambda b: b)
    img_file = tmp_path / f"img-idx3-ubyte{suffix}"
    lab_file = tmp_path / f"lab-idx1-ubyte{suffix}"
    img_file.write_bytes(encode(idx_images(images)))
    lab_file.write_bytes(encode(idx_labels(labels)))

    got_images = _idx.read_images(img_file)
    got_labels = _idx.read_labels(lab_file)
    assert got_images.dtype == np.uint8 and got_images.shape == (5, 4, 3)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    got_images[0, 0, 0] = 7  # a writable copy, not a view on the file bytes


def test_gzip_detected_by_content_not_name(tmp_path, labels):
    path = tmp_path / "labels.idx"
    path.write_bytes(gzip.compress(idx_labels(labels)))
    np.testing.assert_array_equal(_idx.read_labels(path), labels)


def test_multibyte_big_endian_types(tmp_path):
    values = np.arange(-6, 6, dtype=">i4").reshape(3, 4)
    path = tmp_path / "ints.idx"
    path.write_bytes(struct.pack(">BBBBII", 0, 0, 0x0C, 2, 3, 4) + values.tobytes())
    got = _idx.read_idx(path)
    assert got.dtype == np.int32 and got.dtype.isnative
    np.testing.assert_array_equal(got, values)


def test_write_idx_round_trip(tmp_path, images):
    for name in ("a.idx", "a.idx.gz"):
        _idx.write_idx(tmp_path / name, images)
        np.testing.assert_array_equal(_idx.read_images(tmp_path / name), images)
    assert (tmp_path / "a.idx").read_bytes() == idx_images(images)


def _raises(path, match, reader=_idx.read_idx):
    with pytest.raises(DataError, match=match) as info:
        reader(path)
    assert str(path) in str(info.value)
    return info.value


def test_wrong_magic(tmp_path, images, labels):
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_labels(labels)))
    _raises(path, r"wrong IDX magic number 0x00000801 \(ubyte labels, 1 dimension\), expected "
                  r"0x00000803", _idx.read_images)
    junk = tmp_path / "junk.idx"
    junk.write_bytes(b"\x12\x34\x56\x78" + bytes(16))
    _raises(junk, "not an IDX file")
    bad_type = tmp_path / "badtype.idx"
    bad_type.write_bytes(bytes([0, 0, 0x07, 1]) + struct.pack(">I", 2) + b"ab")
    _raises(bad_type, "not an IDX file")


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_data(tmp_path, images, compress):
    data = idx_images(images)[:-7]
    path = tmp_path / ("img.gz" if compress else "img")
    path.write_bytes(gzip.compress(data) if compress else data)
    _raises(path, r"truncated IDX file: header declares shape \(5, 4, 3\) \(60 data bytes\) "
                  r"but only 53", _idx.read_images)


def test_truncated_header_and_empty(tmp_path, images):
    path = tmp_path / "short.idx"
    path.write_bytes(idx_images(images)[:10])
    _raises(path, "truncated IDX file: 10 bytes, the header")
    path.write_bytes(b"")
    _raises(path, "truncated IDX file: 0 bytes")


def test_trailing_bytes(tmp_path, labels):
    path = tmp_path / "labels.idx"
    path.write_bytes(idx_labels(labels) + b"\0\0\0")
    _raises(path, "3 unexpected bytes after", _idx.read_labels)


def test_corrupt_gzip(tmp_path, images):
    good = gzip.compress(idx_images(np.tile(images, (40, 1, 1))))
    flipped = bytearray(good)
    for i in range(20, 60):
        flipped[i] ^= 0xFF
    path = tmp_path / "img-idx3-ubyte.gz"
    path.write_bytes(bytes(flipped))
    _raises(path, "corrupt gzip data")


def test_truncated_gzip(tmp_path, images):
    path = tmp_path / "img-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_images(images))[:-12])
    _raises(path, "corrupt gzip data: file is truncated")


def test_gz_name_without_gzip_content(tmp_path, images):
    path = tmp_path / "img-idx3-ubyte.gz"
    path.write_bytes(b"<html>not found</html>")
    _raises(path, "not a gzip file")


def test_missing_file(tmp_path):
    _raises(tmp_path / "nope.gz", "file not found")
