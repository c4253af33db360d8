"""Fashion-MNIST (Zalando Research): 28x28 grey images of 10 clothing classes.

The four IDX files are looked up, in order, in

1. ``$XAIBENCH_DATA/fashion-mnist`` (when ``XAIBENCH_DATA`` is set),
2. the user cache, ``$XDG_CACHE_HOME/xaibench/fashion-mnist`` or
   ``~/.cache/xaibench/fashion-mnist``,
3. ``/usr/share/datasets/fashion-mnist`` (Debian package ``dataset-fashion-mnist``);

the first folder that holds all four is used. :func:`fetch` downloads missing files from the
official source into the user cache (``xaibench data fetch fashion-mnist``).

Every file is verified before use: its SHA-256 must be that of the official ``.gz`` file or of
the Debian package's copy (the same compressed stream with the gzip file name stripped), or the
SHA-256 of its decompressed content must be that of the official data.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from xaibench.data import _idx
from xaibench.data import _download
from xaibench.data.base import Dataset, DatasetInfo, check_count
from xaibench.errors import DataError

log = logging.getLogger(__name__)

NAME = "fashion_mnist"
FOLDER = "fashion-mnist"
BASE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Bag",
               "Sneaker", "Ankle boot")


@dataclass(frozen=True)
class _File:
    name: str
    sha256: str          # the official .gz as served by BASE_URL
    alt_sha256: tuple[str, ...]  # other known-good .gz encodings (Debian: no gzip FNAME field)
    content_sha256: str  # the decompressed IDX bytes
    magic: int
    count: int


FILES = {
    "train_images": _File(
        "train-images-idx3-ubyte.gz",
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        ("b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",),
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        _idx.IMAGES_MAGIC, 60000),
    "train_labels": _File(
        "train-labels-idx1-ubyte.gz",
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        ("0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",),
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        _idx.LABELS_MAGIC, 60000),
    "test_images": _File(
        "t10k-images-idx3-ubyte.gz",
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        ("cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",),
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        _idx.IMAGES_MAGIC, 10000),
    "test_labels": _File(
        "t10k-labels-idx1-ubyte.gz",
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        ("8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",),
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        _idx.LABELS_MAGIC, 10000),
}


def cache_dir() -> Path:
    """The user cache folder: ``$XDG_CACHE_HOME/xaibench/fashion-mnist`` or ``~/.cache/...``."""
    return _download.user_cache_dir(FOLDER)


def search_dirs() -> list[Path]:
    """The folders searched for the files, in order."""
    return _download.data_dirs(FOLDER) + [SYSTEM_DIR]


def find() -> Path | None:
    """The first search folder holding all four files (not yet verified), else None."""
    for folder in search_dirs():
        if all((folder / f.name).is_file() for f in FILES.values()):
            return folder
    return None


def fetch(dest: str | os.PathLike[str] | None = None, *, timeout: float = 60.0) -> Path:
    """Make the four files available and verified; return their folder.

    Without ``dest``: when a search folder already holds all four files they are verified and
    that folder is returned (nothing is downloaded); otherwise missing files are downloaded
    from :data:`BASE_URL` into the user cache. With ``dest``: files missing in ``dest`` are
    downloaded there. A file that fails verification raises :class:`DataError`, except in the
    download folder, where it is downloaded again.
    """
    if dest is None:
        found = find()
        if found is not None:
            with _refetch_hint():
                for f in FILES.values():
                    _verify(found / f.name, f)
            return found
        folder = cache_dir()
    else:
        folder = Path(dest).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    for f in FILES.values():
        path = folder / f.name
        if path.is_file():
            try:
                _verify(path, f)
                continue
            except DataError as exc:
                log.warning("%s; downloading it again", exc)
        log.info("downloading %s%s to %s", BASE_URL, f.name, path)
        _download.download(BASE_URL + f.name, path, f.sha256, timeout=timeout)
    return folder


def load(*, n_train: int | None = None, n_test: int | None = None,
         download: bool = False) -> Dataset:
    """Fashion-MNIST as a :class:`Dataset`: x (N, 28, 28, 1) float32 in [0, 1], y int64.

    ``n_train`` / ``n_test`` keep the first n images of each split in the official file order
    (None keeps all 60000 / 10000). ``download=True`` calls :func:`fetch` when no search
    folder holds the files; otherwise a missing dataset raises :class:`DataError`.
    Decoded files are cached in-process, so later calls are fast.
    """
    n_train = check_count(NAME, "n_train", n_train, FILES["train_images"].count)
    n_test = check_count(NAME, "n_test", n_test, FILES["test_images"].count)
    folder = find()
    if folder is None:
        if not download:
            raise DataError(
                "Fashion-MNIST not found: none of "
                + ", ".join(str(d) for d in search_dirs())
                + " holds " + ", ".join(f.name for f in FILES.values())
                + " — run `xaibench data fetch fashion-mnist`, "
                "or install the Debian package dataset-fashion-mnist")
        folder = fetch()
    arrays = {key: _read(folder / f.name, f) for key, f in FILES.items()}
    return Dataset(
        name=NAME,
        x_train=_to_float(arrays["train_images"][:n_train]),
        y_train=arrays["train_labels"][:n_train].astype(np.int64),
        x_test=_to_float(arrays["test_images"][:n_test]),
        y_test=arrays["test_labels"][:n_test].astype(np.int64),
        class_names=CLASS_NAMES,
    )



def _to_float(images: np.ndarray) -> np.ndarray:
    return np.divide(images, np.float32(255), dtype=np.float32)[..., None]


@contextlib.contextmanager
def _refetch_hint() -> Iterator[None]:
    """Add the fix to a :class:`DataError` about a damaged or wrong file."""
    try:
        yield
    except DataError as exc:
        raise DataError(f"{exc} — delete the file and run `xaibench data fetch fashion-mnist` "
                        f"to download it again") from None


def _read(path: Path, spec: _File) -> np.ndarray:
    """Verified, decoded contents of ``path`` (read-only uint8), cached per file version."""
    stat = path.stat()
    return _read_cached(str(path), stat.st_size, stat.st_mtime_ns, spec)


@functools.lru_cache(maxsize=8)
def _read_cached(path: str, size: int, mtime_ns: int, spec: _File) -> np.ndarray:
    del size, mtime_ns  # cache key only: a replaced file is read again
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read file: {exc}") from exc
    ok = hashlib.sha256(raw).hexdigest() in (spec.sha256, *spec.alt_sha256)
    with _refetch_hint():
        data = _idx.decompress(raw, path)
        if not ok and hashlib.sha256(data).hexdigest() != spec.content_sha256:
            raise DataError(f"{path}: checksum mismatch: the file is not the official "
                            f"{spec.name}")
        array = _idx.parse_idx(data, path, expect_magic=spec.magic)
        if array.shape[0] != spec.count:
            raise DataError(f"{path}: expected {spec.count} items, found {array.shape[0]}")
    array.setflags(write=False)
    return array


def _verify(path: Path, spec: _File) -> None:
    """Raise :class:`DataError` unless ``path`` is a known-good copy of ``spec``."""
    if _download.sha256_file(path) in (spec.sha256, *spec.alt_sha256):
        return
    content = _idx.read_bytes(path)
    if hashlib.sha256(content).hexdigest() != spec.content_sha256:
        raise DataError(f"{path}: checksum mismatch: the file is not the official {spec.name}")


def describe(*, n_train: int | None = None, n_test: int | None = None,
             download: bool = False) -> DatasetInfo:
    """What :func:`load` with these parameters returns, checked without reading the files."""
    return DatasetInfo(
        shape=(28, 28, 1), n_classes=len(CLASS_NAMES),
        n_train=check_count(NAME, "n_train", n_train, FILES["train_images"].count),
        n_test=check_count(NAME, "n_test", n_test, FILES["test_images"].count))
