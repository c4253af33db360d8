"""Fashion-MNIST: search order, verification, fetch (local server only) and the real data."""

from __future__ import annotations

import gzip
import shutil
import struct

import numpy as np
import pytest

from tests.unit.data._fashion import (fake_files, isolated_search_dirs, use_fake_checksums,
                                     write_files)
from xaibench.data import fashion_mnist as fm
from xaibench.errors import ConfigError, DataError

REAL = fm.SYSTEM_DIR
HAVE_REAL = all((REAL / f.name).is_file() for f in fm.FILES.values())


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Isolated search folders: $XAIBENCH_DATA, XDG cache and the system folder under tmp."""
    return isolated_search_dirs(tmp_path, monkeypatch)


def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert fm.cache_dir() == tmp_path / "xaibench" / "fashion-mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert fm.cache_dir() == tmp_path / "home" / ".cache" / "xaibench" / "fashion-mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert fm.cache_dir() == tmp_path / "home" / ".cache" / "xaibench" / "fashion-mnist"


def test_search_order(env, monkeypatch):
    files = {m: fake_files(m) for m in (10, 20, 30)}  # a different copy in each folder
    assert fm.search_dirs() == [env["data"], env["cache"], env["system"]]
    for marker, key in ((30, "system"), (20, "cache"), (10, "data")):
        write_files(env[key], files[marker])
        use_fake_checksums(monkeypatch, files[marker])  # only this copy passes verification
        assert fm.find() == env[key]
        ds = fm.load()
        assert ds.x_train[1, 1, 1, 0] == pytest.approx(marker / 255)
    # an incomplete folder is passed over
    (env["data"] / "t10k-labels-idx1-ubyte.gz").unlink()
    assert fm.find() == env["cache"]


def test_load_fake_data(env, monkeypatch):
    files = fake_files(200)
    write_files(env["cache"], files)
    use_fake_checksums(monkeypatch, files)
    ds = fm.load()
    assert ds.name == "fashion_mnist" and ds.class_names == fm.CLASS_NAMES
    assert ds.x_train.shape == (6, 2, 2, 1) and ds.x_test.shape == (3, 2, 2, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train[..., 0][:, 0, 0].tolist() == pytest.approx([i / 255 for i in range(6)])
    sub = fm.load(n_train=4, n_test=0)
    np.testing.assert_array_equal(sub.x_train, ds.x_train[:4])  # first n, file order
    np.testing.assert_array_equal(sub.y_train, ds.y_train[:4])
    assert sub.x_test.shape == (0, 2, 2, 1)
    sub.x_train[0] = 1.0  # each load returns fresh arrays: the cache stays intact
    assert fm.load().x_train[0, 1, 1, 0] == pytest.approx(200 / 255)
    for bad in (-1, 7, 2.5, True):
        with pytest.raises(ConfigError, match="n_train"):
            fm.load(n_train=bad)


def test_not_found(env):
    with pytest.raises(DataError, match="Fashion-MNIST not found") as info:
        fm.load()
    for folder in env.values():
        assert str(folder) in str(info.value)


def test_checksum_mismatch_names_file(env, monkeypatch):
    files = fake_files(1)
    use_fake_checksums(monkeypatch, files)
    files["train-labels-idx1-ubyte.gz"] = gzip.compress(
        struct.pack(">II", 0x801, 6) + bytes([9, 9, 9, 9, 9, 9]))
    write_files(env["data"], files)
    with pytest.raises(DataError, match="checksum mismatch") as info:
        fm.load()
    assert str(env["data"] / "train-labels-idx1-ubyte.gz") in str(info.value)
    with pytest.raises(DataError, match="checksum mismatch"):
        fm.fetch()


def test_corrupt_file_names_file(env, monkeypatch):
    files = fake_files(1)
    use_fake_checksums(monkeypatch, files)
    files["t10k-images-idx3-ubyte.gz"] = files["t10k-images-idx3-ubyte.gz"][:-9]
    write_files(env["system"], files)
    with pytest.raises(DataError, match="corrupt gzip") as info:
        fm.load()
    assert str(env["system"] / "t10k-images-idx3-ubyte.gz") in str(info.value)


def test_fetch_downloads_into_cache(env, monkeypatch, file_server):
    files = fake_files(5)
    use_fake_checksums(monkeypatch, files)
    for name, data in files.items():
        file_server.serve(name, data)
    monkeypatch.setattr(fm, "BASE_URL", file_server.url + "/")

    assert fm.fetch() == env["cache"]
    assert sorted(p.name for p in env["cache"].iterdir()) == sorted(files)
    assert len(file_server.requests) == 4
    assert fm.fetch() == env["cache"]  # present: verified, nothing downloaded
    assert len(file_server.requests) == 4
    assert fm.load().y_test.tolist() == list(np.frombuffer(
        gzip.decompress(files["t10k-labels-idx1-ubyte.gz"])[8:], np.uint8))

    # a damaged file in the download folder is downloaded again
    (env["cache"] / "train-labels-idx1-ubyte.gz").write_bytes(b"junk")
    (env["cache"] / "t10k-labels-idx1-ubyte.gz").unlink()
    assert fm.fetch() == env["cache"]
    assert [r[0] for r in file_server.requests[4:]] == ["/train-labels-idx1-ubyte.gz",
                                                         "/t10k-labels-idx1-ubyte.gz"]


def test_fetch_returns_existing_folder_without_network(env, monkeypatch, file_server):
    files = fake_files(5)
    use_fake_checksums(monkeypatch, files)
    write_files(env["system"], files)
    monkeypatch.setattr(fm, "BASE_URL", file_server.url + "/")
    assert fm.fetch() == env["system"]
    assert file_server.requests == []


def test_fetch_to_dest_and_load_download(env, monkeypatch, file_server, tmp_path):
    files = fake_files(5)
    use_fake_checksums(monkeypatch, files)
    for name, data in files.items():
        file_server.serve(name, data)
    monkeypatch.setattr(fm, "BASE_URL", file_server.url + "/")
    assert fm.fetch(tmp_path / "elsewhere") == tmp_path / "elsewhere"
    assert len(list((tmp_path / "elsewhere").iterdir())) == 4
    assert fm.load(download=True).x_train.shape == (6, 2, 2, 1)  # downloads into the cache
    assert fm.find() == env["cache"]


def test_fetch_checksum_mismatch_leaves_nothing(env, monkeypatch, file_server):
    files = fake_files(5)
    use_fake_checksums(monkeypatch, files)
    for name, data in files.items():
        file_server.serve(name, data)
    file_server.serve("t10k-images-idx3-ubyte.gz", b"tampered on the way")
    monkeypatch.setattr(fm, "BASE_URL", file_server.url + "/")
    with pytest.raises(DataError, match="checksum mismatch") as info:
        fm.fetch()
    assert "t10k-images-idx3-ubyte.gz" in str(info.value)
    assert not (env["cache"] / "t10k-images-idx3-ubyte.gz").exists()
    assert not any(p.name.endswith(".part") for p in env["cache"].iterdir())


# --- the real files (Debian package dataset-fashion-mnist) -----------------------------------

needs_real = pytest.mark.skipif(not HAVE_REAL, reason=f"no Fashion-MNIST in {REAL}")


@needs_real
def test_real_files_verify_and_fetch_needs_no_network(env, monkeypatch):
    monkeypatch.setattr(fm, "SYSTEM_DIR", REAL)
    monkeypatch.setattr(fm, "BASE_URL", "http://127.0.0.1:9/unreachable/")
    assert fm.fetch() == REAL


@needs_real
def test_recompressed_real_file_accepted_by_content_checksum(tmp_path):
    spec = fm.FILES["test_labels"]
    copy = tmp_path / spec.name
    copy.write_bytes(gzip.compress(gzip.decompress((REAL / spec.name).read_bytes()), mtime=1))
    fm._verify(copy, spec)
    shutil.copy(REAL / spec.name, copy)
    fm._verify(copy, spec)


@needs_real
def test_real_data(env, monkeypatch):
    monkeypatch.setattr(fm, "SYSTEM_DIR", REAL)
    ds = fm.load()
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
    assert ds.x_train.dtype == np.float32 and ds.x_test.dtype == np.float32
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert 0.0 <= ds.x_test.min() and ds.x_test.max() <= 1.0
    assert ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.y_train[:5].tolist() == [9, 0, 0, 3, 0]  # official file order
    assert ds.spec.shape == (28, 28, 1) and len(ds.class_names) == 10
    small = fm.load(n_train=100, n_test=10)
    np.testing.assert_array_equal(small.x_train, ds.x_train[:100])
    assert small.y_test.shape == (10,)
