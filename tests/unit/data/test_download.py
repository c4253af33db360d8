"""download(): local HTTP server on 127.0.0.1 and file:// URLs only — never the network."""

from __future__ import annotations

import hashlib
import os
import socket

import pytest

from xaibench.data._download import download, part_path, sha256_file
from xaibench.errors import DataError

DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()


def test_sha256_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(DATA)
    assert sha256_file(path) == SHA


def test_downloads_verifies_and_renames(tmp_path, file_server):
    url = file_server.serve("blob.gz", DATA)
    dest = tmp_path / "sub" / "blob.gz"
    seen = []
    assert download(url, dest, SHA, progress=lambda done, total: seen.append((done, total))) == dest
    assert dest.read_bytes() == DATA
    assert sorted(p.name for p in dest.parent.iterdir()) == ["blob.gz"]
    assert seen[-1] == (len(DATA), len(DATA))


def test_existing_valid_file_is_not_downloaded(tmp_path, file_server):
    url = file_server.serve("blob.gz", DATA)
    dest = tmp_path / "blob.gz"
    dest.write_bytes(DATA)
    download(url, dest, SHA.upper())
    assert file_server.requests == []


def test_checksum_mismatch_leaves_nothing(tmp_path, file_server):
    url = file_server.serve("blob.gz", DATA)
    dest = tmp_path / "blob.gz"
    with pytest.raises(DataError, match="checksum mismatch") as info:
        download(url, dest, "0" * 64)
    assert str(dest) in str(info.value) and SHA in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_checksum_mismatch_keeps_existing_file_untouched(tmp_path, file_server):
    url = file_server.serve("blob.gz", b"tampered")
    dest = tmp_path / "blob.gz"
    dest.write_bytes(b"old")
    with pytest.raises(DataError, match="checksum mismatch"):
        download(url, dest, SHA)
    assert dest.read_bytes() == b"old"
    assert not part_path(dest).exists()


def test_wrong_existing_file_is_replaced(tmp_path, file_server):
    url = file_server.serve("blob.gz", DATA)
    dest = tmp_path / "blob.gz"
    dest.write_bytes(b"stale")
    download(url, dest, SHA)
    assert dest.read_bytes() == DATA


def test_interrupted_download_is_resumed_with_range(tmp_path, file_server):
    url = file_server.serve("blob.gz", DATA)
    dest = tmp_path / "blob.gz"
    file_server.truncate_next = 1
    with pytest.raises(DataError, match="interrupted") as info:
        download(url, dest, SHA)
    assert str(dest) in str(info.value)
    assert not dest.exists()  # never a half-written final file
    kept = part_path(dest).stat().st_size
    assert 0 < kept < len(DATA)

    download(url, dest, SHA)
    assert dest.read_bytes() == DATA
    assert not part_path(dest).exists()
    assert file_server.requests == [("/blob.gz", None), ("/blob.gz", f"bytes={kept}-")]


def test_partial_file_discarded_when_server_ignores_range(tmp_path, file_server):
    url = file_server.serve("blob.gz", DATA)
    file_server.ranges = False
    dest = tmp_path / "blob.gz"
    part_path(dest).write_bytes(DATA[:1000])
    download(url, dest, SHA)
    assert dest.read_bytes() == DATA
    assert file_server.requests == [("/blob.gz", "bytes=1000-")]


def test_bad_partial_file_is_downloaded_again(tmp_path, file_server):
    url = file_server.serve("blob.gz", DATA)
    dest = tmp_path / "blob.gz"
    part_path(dest).write_bytes(b"X" * 1000)  # resumed, fails the checksum, restarts
    download(url, dest, SHA)
    assert dest.read_bytes() == DATA
    assert file_server.requests == [("/blob.gz", "bytes=1000-"), ("/blob.gz", None)]


def test_complete_partial_file_answered_416(tmp_path, file_server):
    url = file_server.serve("blob.gz", DATA)
    dest = tmp_path / "blob.gz"
    part_path(dest).write_bytes(DATA)
    download(url, dest, SHA)
    assert dest.read_bytes() == DATA and not part_path(dest).exists()


def test_http_error_names_file(tmp_path, file_server):
    dest = tmp_path / "missing.gz"
    with pytest.raises(DataError, match="HTTP 404") as info:
        download(f"{file_server.url}/missing.gz", dest, SHA)
    assert str(dest) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server(tmp_path):
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dest = tmp_path / "blob.gz"
    with pytest.raises(DataError, match="download from .* failed") as info:
        download(f"http://127.0.0.1:{port}/blob.gz", dest, SHA, timeout=5)
    assert str(dest) in str(info.value)


def test_file_url(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(DATA)
    dest = tmp_path / "out" / "copy.bin"
    part = part_path(dest)
    part.parent.mkdir()
    part.write_bytes(b"leftover")  # no ranges for file://: discarded
    download(src.as_uri(), dest, SHA)
    assert dest.read_bytes() == DATA and not part.exists()
    with pytest.raises(DataError, match="checksum mismatch"):
        download(src.as_uri(), tmp_path / "out" / "bad.bin", "f" * 64)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["copy.bin"]
