"""Reader for the IDX format of (Fashion-)MNIST, plain or gzip-compressed.

An IDX file is a 4-byte magic number ``0x00 0x00 <dtype> <ndim>``, then ``ndim`` big-endian
uint32 dimension sizes, then the values in C order, big-endian. Labels are ``0x00000801``
(ubyte, 1 dimension), images ``0x00000803`` (ubyte, 3 dimensions).

Every problem (wrong magic, truncated data, trailing bytes, corrupt gzip) raises
:class:`~xaibench.errors.DataError` naming the file and what is wrong.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from xaibench.errors import DataError

LABELS_MAGIC = 0x00000801
IMAGES_MAGIC = 0x00000803

_GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> big-endian numpy dtype
_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The file's bytes, gunzipped when the file is gzip (detected by content, not name)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read file: {exc}") from exc
    return decompress(raw, path)


def decompress(raw: bytes, path: str | os.PathLike[str]) -> bytes:
    """Gunzip ``raw`` when it is gzip data (else return it unchanged); ``path`` names errors."""
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except EOFError:
            raise DataError(f"{path}: corrupt gzip data: file is truncated "
                            "(compressed stream ends before its end marker)") from None
        except (OSError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt gzip data: {exc}") from None
    if str(path).endswith(".gz"):
        raise DataError(f"{path}: not a gzip file (starts with {raw[:4].hex() or 'nothing'}, "
                        "expected 1f8b)")
    return raw


def parse_idx(data: bytes, path: str | os.PathLike[str], *,
              expect_magic: int | None = None) -> np.ndarray:
    """Decode IDX ``data`` (already decompressed) into a native-endian, writable array.

    ``expect_magic`` (e.g. :data:`IMAGES_MAGIC`) checks the type and number of dimensions.
    ``path`` is only used in error messages.
    """
    if len(data) < 4:
        raise DataError(f"{path}: truncated IDX file: {len(data)} bytes, too short for the "
                        "4-byte magic number")
    magic = int.from_bytes(data[:4], "big")
    if expect_magic is not None and magic != expect_magic:
        raise DataError(f"{path}: wrong IDX magic number 0x{magic:08x} ({_describe(magic)}), "
                        f"expected 0x{expect_magic:08x} ({_describe(expect_magic)}): the file "
                        f"holds other data than its name says")
    zero, type_code, ndim = magic >> 16, (magic >> 8) & 0xFF, magic & 0xFF
    if zero != 0 or type_code not in _DTYPES or ndim == 0:
        raise DataError(f"{path}: not an IDX file (magic number 0x{magic:08x})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX file: {len(data)} bytes, the header of a "
                        f"{ndim}-dimensional IDX file needs {header}")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = _DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        raise DataError(f"{path}: truncated IDX file: header declares shape {shape} "
                        f"({expected} data bytes) but only {found} data bytes are present")
    if found > expected:
        raise DataError(f"{path}: malformed IDX file: {found - expected} unexpected bytes after "
                        f"the {expected} data bytes of shape {shape}")
    array = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return array.reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike[str], *, expect_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (plain or ``.gz``) into a native-endian, writable numpy array."""
    return parse_idx(read_bytes(path), path, expect_magic=expect_magic)


def read_images(path: str | os.PathLike[str]) -> np.ndarray:
    """A ubyte image file (magic 0x00000803) as uint8 array (N, H, W)."""
    return read_idx(path, expect_magic=IMAGES_MAGIC)


def read_labels(path: str | os.PathLike[str]) -> np.ndarray:
    """A ubyte label file (magic 0x00000801) as uint8 array (N,)."""
    return read_idx(path, expect_magic=LABELS_MAGIC)


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``)."""
    array = np.asarray(array)
    for code, dtype in _DTYPES.items():
        if array.dtype.kind == dtype.kind and array.dtype.itemsize == dtype.itemsize:
            break
    else:
        raise ValueError(f"no IDX type for dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + array.astype(dtype, copy=False).tobytes()
    path = Path(path)
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)


def _describe(magic: int) -> str:
    if magic == LABELS_MAGIC:
        return "ubyte labels, 1 dimension"
    if magic == IMAGES_MAGIC:
        return "ubyte images, 3 dimensions"
    return "neither ubyte images nor ubyte labels"
