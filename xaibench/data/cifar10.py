"""CIFAR-10 (Krizhevsky, 2009): 32x32 colour images of 10 classes, python-pickle batches.

The dataset is the official ``cifar-10-python.tar.gz``, whose folder ``cifar-10-batches-py``
holds ``data_batch_1`` ... ``data_batch_5`` (training), ``test_batch`` and ``batches.meta``.
Each batch is a pickled dict with ``b"data"`` (uint8, (N, 3072): 1024 red, then green, then
blue values of a 32x32 image in row-major order) and ``b"labels"`` (N ints in 0..9);
``batches.meta`` holds ``b"label_names"``.

The files are looked up, in order, in

1. ``$XAIBENCH_DATA/cifar-10`` (when ``XAIBENCH_DATA`` is set),
2. the user cache, ``$XDG_CACHE_HOME/xaibench/cifar-10`` or ``~/.cache/xaibench/cifar-10``;

in each, the extracted ``cifar-10-batches-py`` folder, or else the archive itself (then
verified and extracted there). :func:`fetch` downloads the archive from :data:`URL` into the
user cache (``xaibench data fetch cifar10``).

The archive is verified by its SHA-256 (:data:`SHA256`, as ``keras.datasets.cifar10`` pins
it; the dataset's site publishes only the MD5 ``c58f30108f718f92721af3b95e74349a``). The
extracted batches have no published checksums: they are checked by their structure (dtype,
shape, label range, matching counts). Batches are unpickled with an allow-list of the few
globals the format needs, so a tampered file cannot run code.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from xaibench._files import sha256_file, write_atomic
from xaibench.data import _download
from xaibench.data.base import Dataset, DatasetInfo, check_count
from xaibench.errors import DataError

log = logging.getLogger(__name__)

NAME = "cifar10"
FOLDER = "cifar-10"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE = "cifar-10-python.tar.gz"
#: SHA-256 of the official archive (170498071 bytes), as keras.datasets.cifar10 verifies it
SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
BATCHES = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
FILES = (*TRAIN_FILES, TEST_FILE, META_FILE)
N_TRAIN, N_TEST = 50000, 10000
SHAPE = (32, 32, 3)
N_CLASSES = 10

_FETCH = "run `xaibench data fetch cifar10`"

#: the globals a CIFAR batch pickle may name: numpy's array reconstruction, and the codec
#: Python 3 uses for bytes in protocol-2 pickles
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


def cache_dir() -> Path:
    """The user cache folder: ``$XDG_CACHE_HOME/xaibench/cifar-10`` or ``~/.cache/...``."""
    return _download.user_cache_dir(FOLDER)


def search_dirs() -> list[Path]:
    """The folders searched for the batches or the archive, in order."""
    return _download.data_dirs(FOLDER)


def _complete(batches: Path) -> bool:
    return all((batches / name).is_file() for name in FILES)


def find() -> Path | None:
    """The first ``cifar-10-batches-py`` folder holding all seven files; a search folder
    holding only the archive gets it verified and extracted first. None when neither is found."""
    for folder in search_dirs():
        if _complete(folder / BATCHES):
            return folder / BATCHES
        if (folder / ARCHIVE).is_file():
            _verify_archive(folder / ARCHIVE)
            return extract(folder / ARCHIVE, folder)
    return None


def fetch(dest: str | os.PathLike[str] | None = None, *, timeout: float = 60.0) -> Path:
    """Make the batches available and checked; return their folder.

    Without ``dest``: the batches found by :func:`find` are checked (nothing is downloaded);
    otherwise the archive is downloaded from :data:`URL` into the user cache, verified and
    extracted. With ``dest``: the archive is downloaded into ``dest`` unless its batches are
    already there. A download that fails its checksum raises :class:`DataError`.
    """
    if dest is None:
        found = find()
        if found is not None:
            for name in FILES:
                _read(found / name)
            return found
        folder = cache_dir()
    else:
        folder = Path(dest).expanduser()
        if _complete(folder / BATCHES):
            return folder / BATCHES
    log.info("downloading %s to %s", URL, folder / ARCHIVE)
    _download.download(URL, folder / ARCHIVE, SHA256, timeout=timeout)
    return extract(folder / ARCHIVE, folder)


def extract(archive: Path, folder: Path) -> Path:
    """Write the seven batch files of ``archive`` into ``folder/cifar-10-batches-py``.

    Only regular files named as the official ones are read from the archive, and each is
    written atomically under its own name, so no member path can escape ``folder``. A corrupt
    or truncated archive, or one without all seven files, raises :class:`DataError`.
    """
    target = folder / BATCHES
    wanted = {f"{BATCHES}/{name}" for name in FILES}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    found[member.name.rpartition("/")[2]] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DataError(f"{archive}: corrupt or truncated archive ({exc}); delete it and "
                        f"{_FETCH}") from None
    missing = sorted(set(FILES) - set(found))
    if missing:
        raise DataError(f"{archive}: the archive lacks {', '.join(missing)} under {BATCHES}/; "
                        f"it is not the official {ARCHIVE}: delete it and {_FETCH}")
    for name, data in found.items():
        write_atomic(target / name, data)
    return target


def _verify_archive(path: Path) -> None:
    actual = sha256_file(path)
    if actual != SHA256:
        raise DataError(f"{path}: checksum mismatch: SHA-256 {actual} is not that of the "
                        f"official {ARCHIVE} ({SHA256}); delete it and {_FETCH}")


def load(*, n_train: int | None = None, n_test: int | None = None,
         download: bool = False) -> Dataset:
    """CIFAR-10 as a :class:`Dataset`: x (N, 32, 32, 3) float32 in [0, 1], y int64, the class
    names of ``batches.meta``.

    ``n_train`` / ``n_test`` keep the first n images of each split in file order (None keeps
    all the files hold). ``download=True`` calls :func:`fetch` when nothing is found;
    otherwise a missing dataset raises :class:`DataError` saying how to get it.
    """
    describe(n_train=n_train, n_test=n_test)
    folder = find()
    if folder is None:
        if not download:
            places = " or ".join(str(d) for d in search_dirs())
            raise DataError(f"CIFAR-10 not found: {_FETCH}, or put {ARCHIVE} (from {URL}) or "
                            f"its extracted {BATCHES}/ folder into {places}")
        folder = fetch()
    x_train, y_train = _split(folder, TRAIN_FILES, n_train)
    x_test, y_test = _split(folder, (TEST_FILE,), n_test)
    return Dataset(name=NAME, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   class_names=_read(folder / META_FILE))


def _split(folder: Path, names: tuple[str, ...],
           n: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` (None: all) images (NHWC float32 in [0, 1]) and labels of the batches
    ``names``."""
    images, labels, total = [], [], 0
    for name in names:
        if n is not None and total >= n:
            break
        data, batch_labels = _read(folder / name)
        images.append(data[:None if n is None else n - total])
        labels.append(batch_labels[:len(images[-1])])
        total += len(images[-1])
    if n is not None and total < n:
        raise DataError(f"{folder}: {', '.join(names)} hold {total} images, fewer than the "
                        f"{n} requested; ask for fewer or {_FETCH} to get the full files")
    pixels = np.concatenate(images) if images else np.zeros((0, 3072), np.uint8)
    x = pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # CHW rows -> NHWC
    y = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    return np.divide(x, np.float32(255), dtype=np.float32), y.astype(np.int64)


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches; any global outside :data:`_ALLOWED_GLOBALS` is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        if module.startswith("numpy") and module.endswith("multiarray"):
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def _read(path: Path) -> Any:
    """A checked batch ((images uint8 (N, 3072), labels int64 (N,)), read-only) or, for
    ``batches.meta``, the class names; cached per file version."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise DataError(f"{path}: cannot read file: {exc}; {_FETCH}") from None
    return _read_cached(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read_cached(path: str, size: int, mtime_ns: int) -> Any:
    del size, mtime_ns  # cache key only: a replaced file is read again
    try:
        with open(path, "rb") as handle:
            content = _BatchUnpickler(io.BufferedReader(handle), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, KeyError) as exc:
        raise DataError(f"{path}: not a CIFAR-10 python batch (corrupt, truncated or "
                        f"tampered: {exc}); delete it and {_FETCH}") from None
    if Path(path).name == META_FILE:
        return _class_names(path, content)
    return _batch(path, content)


def _class_names(path: str, meta: Any) -> tuple[str, ...]:
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != N_CLASSES:
        raise DataError(f"{path}: expected {N_CLASSES} b'label_names' in the meta file; "
                        f"delete it and {_FETCH}")
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def _batch(path: str, batch: Any) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{path}: expected a dict with b'data' and b'labels'; delete it and "
                        f"{_FETCH}")
    data, labels = batch[b"data"], np.asarray(batch[b"labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        raise DataError(f"{path}: b'data' must be uint8 of shape (N, 3072), got "
                        f"{getattr(data, 'dtype', type(data).__name__)} "
                        f"{getattr(data, 'shape', '')}; delete it and {_FETCH}")
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer) \
            or (labels.size and not 0 <= labels.min() <= labels.max() < N_CLASSES):
        raise DataError(f"{path}: b'labels' must be {len(data)} integers in "
                        f"0..{N_CLASSES - 1}; delete it and {_FETCH}")
    data, labels = np.ascontiguousarray(data), labels.astype(np.int64)
    data.setflags(write=False)
    labels.setflags(write=False)
    return data, labels


def describe(*, n_train: int | None = None, n_test: int | None = None,
             download: bool = False) -> DatasetInfo:
    """What :func:`load` with these parameters returns, checked without reading the files."""
    return DatasetInfo(shape=SHAPE, n_classes=N_CLASSES,
                       n_train=check_count(NAME, "n_train", n_train, N_TRAIN),
                       n_test=check_count(NAME, "n_test", n_test, N_TEST))
