"""Checksum-verified, resumable, atomic file downloads with the standard library.

:func:`download` streams ``url`` into ``<dest>.part`` beside ``dest``, verifies its SHA-256 and
renames it onto ``dest`` in one step, so ``dest`` is never half-written. A ``.part`` file left
by an interrupted download is resumed with an HTTP ``Range`` request; when the server ignores
the range (or the URL is not HTTP) the partial file is discarded and the download restarts.
A checksum mismatch raises :class:`~xaibench.errors.DataError` and removes the partial file.

Two processes downloading the same ``dest`` at the same time are not coordinated.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from xaibench._files import sha256_file
from xaibench.errors import DataError

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_USER_AGENT = "xaibench-data/0.1 (+python urllib)"

Progress = Callable[[int, "int | None"], None]


def user_cache_dir(folder: str) -> Path:
    """A dataset's user cache folder: ``$XDG_CACHE_HOME/xaibench/<folder>`` or
    ``~/.cache/xaibench/<folder>``."""
    xdg = Path(os.environ.get("XDG_CACHE_HOME") or "").expanduser()
    root = xdg if xdg.is_absolute() else Path.home() / ".cache"  # XDG: relative paths invalid
    return root / "xaibench" / folder


def data_dirs(folder: str) -> list[Path]:
    """Where a dataset's files are looked for first: ``$XAIBENCH_DATA/<folder>`` when set,
    then its user cache folder."""
    dirs = []
    if os.environ.get("XAIBENCH_DATA"):
        dirs.append(Path(os.environ["XAIBENCH_DATA"]).expanduser() / folder)
    return [*dirs, user_cache_dir(folder)]


def part_path(dest: Path) -> Path:
    """Where :func:`download` keeps the bytes of ``dest`` until they are verified."""
    return dest.with_name(dest.name + ".part")


def download(url: str, dest: str | os.PathLike[str], sha256: str, *, timeout: float = 60.0,
             progress: Progress | None = None) -> Path:
    """Download ``url`` to ``dest`` unless ``dest`` already holds the file; return ``dest``.

    ``sha256`` is the expected hex digest. ``progress(done_bytes, total_bytes_or_None)`` is
    called after each chunk. Network failures raise :class:`DataError` and keep the partial
    ``.part`` file for the next call to resume; a checksum mismatch raises :class:`DataError`
    and leaves nothing behind (an existing ``dest`` is only replaced by a verified file).
    """
    dest = Path(dest)
    sha256 = sha256.lower()
    if dest.is_file() and sha256_file(dest) == sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)

    resumed = _fetch(url, dest, part, timeout, progress)
    actual = sha256_file(part)
    if actual != sha256 and resumed:
        # the kept prefix may itself have been bad: one clean download before giving up
        log.info("%s: checksum mismatch after resuming; downloading again from the start", dest)
        part.unlink(missing_ok=True)
        _fetch(url, dest, part, timeout, progress)
        actual = sha256_file(part)
    if actual != sha256:
        part.unlink(missing_ok=True)
        raise DataError(f"{dest}: checksum mismatch for download from {url}: SHA-256 is "
                        f"{actual}, expected {sha256}; the downloaded file was deleted. Run "
                        f"again; if it persists the server (or a proxy) sends other content: "
                        f"get the file elsewhere and place it at {dest}")
    os.replace(part, dest)
    return dest


def _fetch(url: str, dest: Path, part: Path, timeout: float, progress: Progress | None) -> bool:
    """Stream ``url`` into ``part``, resuming an existing ``part`` when the server allows.

    Returns True when existing bytes of ``part`` were kept (a resumed download).
    """
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": _USER_AGENT}
    is_http = url.lower().startswith(("http://", "https://"))
    if offset and is_http:
        headers["Range"] = f"bytes={offset}-"
    elif offset:
        offset = 0  # no ranges outside HTTP: start again
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # nothing left past our offset: the partial file is complete (or bogus: the
            # checksum decides, and a bogus one is downloaded again by the caller)
            exc.close()
            return True
        raise DataError(f"{dest}: download from {url} failed: "
                        f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"{dest}: download from {url} failed: {reason}") from None

    with response:
        status = getattr(response, "status", None)
        total = _content_length(response)
        resumed = False
        if offset and status == 206 and _range_start(response) == offset:
            resumed = True
            mode = "ab"
            if total is not None:
                total += offset
        else:
            if offset:
                log.info("%s: server did not resume at byte %d; starting again", part, offset)
            offset = 0
            mode = "wb"
        done = offset
        try:
            with open(part, mode) as f:
                while block := response.read(_CHUNK):
                    f.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
        except (OSError, http.client.HTTPException) as exc:  # IncompleteRead, reset, timeout
            raise DataError(f"{dest}: download from {url} interrupted after {done} bytes "
                            f"({exc!r}); run again to resume") from None
    if total is not None and done != total:
        raise DataError(f"{dest}: download from {url} interrupted: received "
                        f"{done} of {total} bytes; run again to resume")
    return resumed


def _content_length(response) -> int | None:
    value = response.headers.get("Content-Length") if response.headers else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _range_start(response) -> int | None:
    match = re.match(r"\s*bytes\s+(\d+)-", response.headers.get("Content-Range", "") or "")
    return int(match.group(1)) if match else None
