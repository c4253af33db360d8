"""CIFAR-10 loader on tiny files written here in the official python-pickle batch format."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest

from xaibench.cli import main
from xaibench.data import cifar10
from xaibench.errors import ConfigError, DataError

LABEL_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog",
               b"horse", b"ship", b"truck"]
PER_BATCH = 3


def batch_bytes(index: int, n: int = PER_BATCH) -> bytes:
    """A batch as the official files hold it: a protocol-2 pickle of a dict with bytes keys,
    b"data" uint8 (n, 3072) in CHW order; pixel (0, 0) of image i holds red 10*index + i,
    green 100, blue 200."""
    data = np.zeros((n, 3, 32, 32), np.uint8)
    data[:, 0, 0, 0] = 10 * index + np.arange(n)
    data[:, 1, 0, 0], data[:, 2, 0, 0] = 100, 200
    data[:, 0, 31, 0] = 255  # row 31, column 0 of the red plane
    return pickle.dumps({b"batch_label": b"batch %d" % index,
                         b"labels": [(index + i) % 10 for i in range(n)],
                         b"data": data.reshape(n, 3072),
                         b"filenames": [b"img_%d.png" % i for i in range(n)]}, protocol=2)


def official_files() -> dict[str, bytes]:
    files = {name: batch_bytes(i) for i, name in enumerate(cifar10.TRAIN_FILES, start=1)}
    files[cifar10.TEST_FILE] = batch_bytes(6)
    files[cifar10.META_FILE] = pickle.dumps({b"label_names": LABEL_NAMES,
                                             b"num_cases_per_batch": PER_BATCH,
                                             b"num_vis": 3072}, protocol=2)
    return files


def archive_bytes(files: dict[str, bytes], extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in {**{f"{cifar10.BATCHES}/{k}": v for k, v in files.items()},
                           **(extra or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write_batches(folder, files) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """$XAIBENCH_DATA and the XDG cache under tmp; a download URL that cannot be reached."""
    monkeypatch.setenv("XAIBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(cifar10, "URL", "http://127.0.0.1:9/unreachable.tar.gz")
    return {"data": tmp_path / "data" / "cifar-10", "cache": tmp_path / "xdg" / "xaibench" /
            "cifar-10"}


def test_load_decodes_the_official_layout(env):
    write_batches(env["cache"] / cifar10.BATCHES, official_files())
    ds = cifar10.load()
    assert ds.name == "cifar10" and ds.class_names[0] == "airplane" and len(ds.class_names) == 10
    assert ds.x_train.shape == (5 * PER_BATCH, 32, 32, 3) and ds.x_test.shape == (PER_BATCH, 32,
                                                                                   32, 3)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    # CHW rows -> HWC: red, green, blue of pixel (0, 0); image order is batch then row order
    assert ds.x_train[4, 0, 0].tolist() == pytest.approx([21 / 255, 100 / 255, 200 / 255])
    assert ds.x_train[0, 31, 0, 0] == 1.0 and ds.x_train[0, 0, 31, 0] == 0.0
    assert ds.y_train.tolist() == [(b + i) % 10 for b in range(1, 6) for i in range(PER_BATCH)]
    sub = cifar10.load(n_train=4, n_test=1)
    np.testing.assert_array_equal(sub.x_train, ds.x_train[:4])  # spans two batches
    assert sub.y_test.tolist() == [6]


def test_search_order_and_archive_extracted_on_first_use(env, monkeypatch):
    files = official_files()
    archive = archive_bytes(files)
    monkeypatch.setattr(cifar10, "SHA256", hashlib.sha256(archive).hexdigest())
    assert cifar10.search_dirs() == [env["data"], env["cache"]]
    write_batches(env["cache"] / cifar10.BATCHES, files)
    assert cifar10.find() == env["cache"] / cifar10.BATCHES
    env["data"].mkdir(parents=True)
    (env["data"] / cifar10.ARCHIVE).write_bytes(archive)  # $XAIBENCH_DATA wins: extracted
    assert cifar10.find() == env["data"] / cifar10.BATCHES
    assert sorted(p.name for p in (env["data"] / cifar10.BATCHES).iterdir()) == \
        sorted(cifar10.FILES)


def test_not_found_says_how_to_get_it(env):
    with pytest.raises(DataError, match=r"xaibench data fetch cifar10") as info:
        cifar10.load()
    message = str(info.value)
    assert "\n" not in message and cifar10.URL in message
    assert str(env["data"]) in message and str(env["cache"]) in message


def test_archive_checksum_mismatch(env):
    env["cache"].mkdir(parents=True)
    (env["cache"] / cifar10.ARCHIVE).write_bytes(archive_bytes(official_files()))
    with pytest.raises(DataError, match="checksum mismatch.*delete it and run `xaibench data "
                                        "fetch cifar10`"):
        cifar10.load()
    assert not (env["cache"] / cifar10.BATCHES).exists()


def test_truncated_and_tampered_files(env, monkeypatch):
    files = official_files()
    archive = archive_bytes(files)
    truncated = archive[:len(archive) // 2]
    monkeypatch.setattr(cifar10, "SHA256", hashlib.sha256(truncated).hexdigest())
    env["cache"].mkdir(parents=True)
    (env["cache"] / cifar10.ARCHIVE).write_bytes(truncated)
    with pytest.raises(DataError, match="corrupt or truncated archive"):
        cifar10.load()
    (env["cache"] / cifar10.ARCHIVE).unlink()

    batches = env["cache"] / cifar10.BATCHES
    write_batches(batches, {**files, "data_batch_2": files["data_batch_2"][:500]})
    with pytest.raises(DataError, match="data_batch_2: not a CIFAR-10 python batch"):
        cifar10.load()

    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    (batches / "data_batch_2").write_bytes(pickle.dumps({b"data": Exploit()}, protocol=2))
    with pytest.raises(DataError, match=r"refused global (__builtin__|builtins).print"):
        cifar10.load()

    wrong = pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, 2)
    (batches / "data_batch_2").write_bytes(wrong)
    with pytest.raises(DataError, match=r"b'data' must be uint8 of shape \(N, 3072\)"):
        cifar10.load()
    bad_labels = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, 2)
    (batches / "data_batch_2").write_bytes(bad_labels)
    with pytest.raises(DataError, match=r"b'labels' must be 2 integers in 0..9"):
        cifar10.load()


def test_archive_members_outside_the_batches_are_ignored(env, monkeypatch, tmp_path):
    files = official_files()
    archive = archive_bytes(files, extra={"../escape": b"x", "/abs/path": b"y",
                                          f"{cifar10.BATCHES}/../../evil": b"z"})
    monkeypatch.setattr(cifar10, "SHA256", hashlib.sha256(archive).hexdigest())
    env["cache"].mkdir(parents=True)
    (env["cache"] / cifar10.ARCHIVE).write_bytes(archive)
    assert cifar10.load().x_train.shape[0] == 5 * PER_BATCH
    assert not (env["cache"].parent / "escape").exists() and not (tmp_path / "evil").exists()
    assert sorted(p.name for p in (env["cache"] / cifar10.BATCHES).iterdir()) == \
        sorted(cifar10.FILES)


def test_fetch_downloads_verifies_and_extracts(env, monkeypatch, file_server, capsys):
    archive = archive_bytes(official_files())
    monkeypatch.setattr(cifar10, "URL", file_server.serve(cifar10.ARCHIVE, archive))
    monkeypatch.setattr(cifar10, "SHA256", hashlib.sha256(archive).hexdigest())
    assert main(["data", "fetch", "cifar10"]) == 0
    assert str(env["cache"] / cifar10.BATCHES) in capsys.readouterr().out
    assert len(file_server.requests) == 1
    assert cifar10.fetch() == env["cache"] / cifar10.BATCHES  # present: nothing downloaded
    assert len(file_server.requests) == 1
    assert cifar10.load().class_names[-1] == "truck"


def test_fetch_checksum_mismatch_leaves_nothing(env, monkeypatch, file_server):
    archive = archive_bytes(official_files())
    monkeypatch.setattr(cifar10, "URL", file_server.serve(cifar10.ARCHIVE, archive))
    with pytest.raises(DataError, match="checksum mismatch"):
        cifar10.load(download=True)
    assert not env["cache"].exists() or not any(env["cache"].iterdir())


def test_too_few_images_and_bad_counts(env):
    write_batches(env["cache"] / cifar10.BATCHES, official_files())
    with pytest.raises(DataError, match="hold 15 images, fewer than the 20 requested"):
        cifar10.load(n_train=20)
    for bad in (-1, 50001, 2.5, True):
        with pytest.raises(ConfigError, match="cifar10: n_train must be an integer in 0..50000"):
            cifar10.describe(n_train=bad)
    info = cifar10.describe(n_train=100, n_test=10)  # no files read
    assert (info.shape, info.n_classes, info.n_train, info.n_test) == ((32, 32, 3), 10, 100, 10)
