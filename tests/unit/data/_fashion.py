"""Fake Fashion-MNIST files and isolated search folders for the loader's tests."""

from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np

from xaibench.data import fashion_mnist as fm


def isolated_search_dirs(tmp_path, monkeypatch) -> dict[str, object]:
    """$XAIBENCH_DATA, the XDG cache and the system folder, all under ``tmp_path``."""
    dirs = {
        "data": tmp_path / "data" / "fashion-mnist",
        "cache": tmp_path / "xdg" / "xaibench" / "fashion-mnist",
        "system": tmp_path / "system" / "fashion-mnist",
    }
    monkeypatch.setenv("XAIBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(fm, "SYSTEM_DIR", dirs["system"])
    return dirs


def fake_files(marker: int) -> dict[str, bytes]:
    """Tiny gzip IDX files (6 train, 3 test images of 2x2): pixel values are ``marker``."""
    rng = np.random.default_rng(marker)
    out = {}
    for split, n in (("train", 6), ("t10k", 3)):
        images = np.full((n, 2, 2), marker, dtype=np.uint8)
        images[:, 0, 0] = np.arange(n)  # to check the order
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        out[f"{split}-images-idx3-ubyte.gz"] = gzip.compress(
            struct.pack(">IIII", 0x803, n, 2, 2) + images.tobytes(), mtime=0)
        out[f"{split}-labels-idx1-ubyte.gz"] = gzip.compress(
            struct.pack(">II", 0x801, n) + labels.tobytes(), mtime=0)
    return out


def use_fake_checksums(monkeypatch, files: dict[str, bytes]) -> None:
    """Point fm.FILES at the fake files' digests (and their 6/3 item counts)."""
    fake = {}
    for key, spec in fm.FILES.items():
        data = files[spec.name]
        fake[key] = fm._File(spec.name, hashlib.sha256(data).hexdigest(), (),
                             hashlib.sha256(gzip.decompress(data)).hexdigest(), spec.magic,
                             6 if key.startswith("train") else 3)
    monkeypatch.setattr(fm, "FILES", fake)


def write_files(folder, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
