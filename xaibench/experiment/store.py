"""SQLite results store: one transaction per finished cell, arrays in atomically written .npz.

Layout of a results directory::

    store.sqlite        tables meta, models, cells, metrics
    arrays/<key>.npz    attribution values, images, labels ... of one cell (path + SHA-256 in cells)
    store.lock          held (``flock``) by the run writing the directory; holds its pid

Reports are rendered from this store only. Meta ``schema_version`` (:data:`SCHEMA_VERSION`)
dates the layout: version 1 (no such key) keyed cells without the data's fingerprint and let
edited configs pool their cells; version 2 scored faithfulness with each cell's own masker and
its metric rows have no ruler. Older stores are refused with the way out (``--replace``).
A file that is not SQLite, is truncated or lacks the tables is refused with the same advice.
Every error of the database or the files is a :class:`DataError` naming the file and the fix.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from xaibench._files import write_atomic
from xaibench.errors import ConfigError, DataError

#: the layout written by this version; see the module notes
SCHEMA_VERSION = 3
LOCK_NAME = "store.lock"
_STORE_NAME = "store.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    model_key TEXT PRIMARY KEY, backend TEXT NOT NULL, architecture TEXT NOT NULL,
    dataset TEXT NOT NULL, train_params TEXT NOT NULL, seed INTEGER NOT NULL,
    accuracy REAL, train_seconds REAL, evaluation TEXT NOT NULL, checkpoint TEXT
);
CREATE TABLE IF NOT EXISTS cells (
    cell_key TEXT PRIMARY KEY, dataset TEXT NOT NULL, backend TEXT NOT NULL,
    architecture TEXT NOT NULL, model_key TEXT NOT NULL, explainer TEXT NOT NULL,
    masker TEXT, params TEXT NOT NULL, seed INTEGER NOT NULL, status TEXT NOT NULL,
    error TEXT, n_images INTEGER, wall_seconds REAL, model_evals INTEGER,
    arrays_file TEXT, arrays_sha256 TEXT, finished_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    cell_key TEXT NOT NULL, metric TEXT NOT NULL, image INTEGER NOT NULL,
    output INTEGER NOT NULL, value REAL, higher_is_better INTEGER NOT NULL,
    category TEXT NOT NULL, ruler TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (cell_key, metric, ruler, image, output)
);
"""


#: the headline test score of a model, by task (the key of its evaluation the tables show)
HEADLINE_SCORES = {"classification": "accuracy", "regression": "r2"}


def headline_score(evaluation: dict[str, Any]) -> tuple[str, float]:
    """(name, value) of the headline test score in a model's ``evaluation``: accuracy for a
    classifier, R² for a regression model (evaluations without a task are classifiers')."""
    name = HEADLINE_SCORES[evaluation.get("task", "classification")]
    value = evaluation.get(name)
    return name, float("nan") if value is None else float(value)


@dataclass(frozen=True)
class ModelRecord:
    """A trained (or loaded) model and its evaluation on the test split; ``accuracy`` is NaN
    (NULL in the store) for a regression model, whose R² is in its evaluation
    (:func:`headline_score`)."""

    model_key: str
    backend: str
    architecture: str
    dataset: str
    train_params: dict[str, Any]
    seed: int
    accuracy: float
    train_seconds: float
    #: per-class report, confusion matrix, history ... (JSON-serialisable)
    evaluation: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None


@dataclass(frozen=True)
class CellRecord:
    """One explained cell of the grid (dataset x backend x model x explainer x masker)."""

    cell_key: str
    dataset: str
    backend: str
    architecture: str
    model_key: str
    explainer: str
    masker: str | None
    params: dict[str, Any]
    seed: int
    n_images: int = 0
    wall_seconds: float = 0.0
    model_evals: int = 0


@dataclass(frozen=True)
class MetricRow:
    """One metric value for one image and one explained output (rank k of the targets)."""

    metric: str
    image: int
    output: int
    value: float
    higher_is_better: bool
    category: str
    #: the replacement that removed pixels ([evaluation] rulers); "" for metrics without one
    ruler: str = ""


@dataclass(frozen=True)
class Progress:
    """Where a results directory stands: its run status (:meth:`Store.run_status`), the cells
    planned (None: not recorded, by an older version), done and failed (label, error)."""

    run_status: str
    planned: int | None
    done: int
    failures: tuple[tuple[str, str], ...]

    @property
    def pending(self) -> int | None:
        """Planned cells neither done nor failed (None when the plan size is unknown)."""
        return None if self.planned is None else self.planned - self.done - len(self.failures)


class Store:
    """The results store of one results directory: opened if it exists (checked: SQLite,
    intact, this schema), else created."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.arrays_dir = self.root / "arrays"
        self.path = self.root / _STORE_NAME
        if self.path.is_file() and self.path.stat().st_size:
            self._check()
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            with self._connect() as con:
                con.executescript(_SCHEMA)
                con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                            (json.dumps(SCHEMA_VERSION),))

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One transaction (commit on success, roll back on error); database errors become
        DataError naming the file and the fix."""
        try:
            con = sqlite3.connect(self.path, timeout=30)
        except sqlite3.Error as exc:
            raise _database_error(self.path, exc) from None
        try:
            with con:
                yield con
        except sqlite3.DatabaseError as exc:
            raise _database_error(self.path, exc) from None
        finally:
            con.close()

    def _check(self) -> None:
        """DataError unless the file is an intact store of :data:`SCHEMA_VERSION`."""
        afresh = _START_AFRESH.format(self.root)
        with self._connect() as con:
            problem = con.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                raise DataError(f"{self.path} is corrupt (SQLite: {' '.join(problem.split())}); "
                                f"{afresh}")
            missing = _missing_columns(con)
            row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() \
                if "meta.key" not in missing and "table meta" not in missing else None
        version = row[0] if row else "1"  # version 1 did not record it
        if missing and (row is None or version == str(SCHEMA_VERSION)):
            raise DataError(f"{self.path} is not an xaibench results store (it lacks "
                            f"{', '.join(missing)}); {afresh}")
        if version != str(SCHEMA_VERSION):
            newer = version.isdigit() and int(version) > SCHEMA_VERSION
            raise DataError(
                f"{self.path} was written by a newer xaibench (store schema {version}, this "
                f"version reads {SCHEMA_VERSION}); upgrade xaibench or choose another --output"
                if newer else
                f"{self.path} was written by an older xaibench (store schema {version}, this "
                f"version reads {SCHEMA_VERSION}: {_CHANGES.get(version, 'its layout differs')}); "
                f"{afresh}")

    # --- meta ---------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        with self._connect() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def meta(self) -> dict[str, Any]:
        """Every meta key, JSON-decoded."""
        with self._connect() as con:
            return {key: json.loads(value) for key, value in con.execute("SELECT * FROM meta")}

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._connect() as con:
            row = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def run_status(self) -> str:
        """Meta ``status`` (running, finished, aborted), or "interrupted" for a run recorded as
        running whose process is gone (killed: the directory's lock is free)."""
        status = self.get_meta("status", "none")
        if status == "running" and lock_holder(self.root) is None:
            return "interrupted"
        return status

    # --- writing ------------------------------------------------------------------------------
    def put_model(self, record: ModelRecord) -> None:
        row = asdict(record)
        row["train_params"] = json.dumps(row["train_params"], sort_keys=True)
        row["evaluation"] = json.dumps(row["evaluation"])
        with self._connect() as con:
            con.execute(f"INSERT OR REPLACE INTO models ({', '.join(row)}) "
                        f"VALUES ({', '.join('?' * len(row))})", tuple(row.values()))

    def put_cell(self, record: CellRecord, arrays: dict[str, np.ndarray],
                 metrics: list[MetricRow] = ()) -> None:
        """Store a finished cell: arrays first (atomic file), then rows in one transaction."""
        file_name, digest = self._write_arrays(record.cell_key, arrays)
        self._put_cell_row(record, "done", None, file_name, digest, metrics)

    def put_failure(self, record: CellRecord, error: str) -> None:
        """Record a failed cell with its error message (it will be retried on the next run)."""
        self._put_cell_row(record, "failed", error, None, None, ())

    def _put_cell_row(self, record: CellRecord, status: str, error: str | None,
                      file_name: str | None, digest: str | None,
                      metrics: list[MetricRow]) -> None:
        row = asdict(record)
        row["params"] = json.dumps(row["params"], sort_keys=True, default=str)
        row.update(status=status, error=error, arrays_file=file_name, arrays_sha256=digest,
                   finished_at=time.time())
        with self._connect() as con:
            con.execute("DELETE FROM metrics WHERE cell_key = ?", (record.cell_key,))
            con.execute(f"INSERT OR REPLACE INTO cells ({', '.join(row)}) "
                        f"VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
            con.executemany(
                "INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(record.cell_key, m.metric, m.image, m.output,
                  None if not np.isfinite(m.value) else float(m.value),
                  int(m.higher_is_better), m.category, m.ruler) for m in metrics])

    def _write_arrays(self, cell_key: str, arrays: dict[str, np.ndarray]) -> tuple[str, str]:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        data = buffer.getvalue()
        file_name = f"{cell_key}.npz"
        try:
            write_atomic(self.arrays_dir / file_name, data)
        except OSError as exc:
            raise DataError(f"cannot write {self.arrays_dir / file_name}: "
                            f"{exc.strerror or exc}; {_WRITABLE.format(self.root)}") from None
        return file_name, hashlib.sha256(data).hexdigest()

    # --- reading ------------------------------------------------------------------------------
    def done_keys(self) -> set[str]:
        """Keys of the cells that finished successfully."""
        with self._connect() as con:
            return {k for (k,) in con.execute("SELECT cell_key FROM cells WHERE status='done'")}

    def keys(self) -> tuple[set[str], set[str]]:
        """The keys of every stored model and of every stored cell (done or failed)."""
        with self._connect() as con:
            return ({k for (k,) in con.execute("SELECT model_key FROM models")},
                    {k for (k,) in con.execute("SELECT cell_key FROM cells")})

    def broken_arrays(self, cell_keys: set[str]) -> dict[str, str]:
        """Of the done cells in ``cell_keys``, those whose arrays file is missing, unreadable
        or fails its SHA-256: key -> "label: problem"."""
        broken = {}
        for key, label, file_name, digest in self._arrays_rows(cell_keys):
            problem = self._read_verified(file_name, digest)
            if isinstance(problem, str):
                broken[key] = f"{label}: {problem}"
        return broken

    def load_arrays(self, cell_key: str) -> dict[str, np.ndarray]:
        """The arrays of a finished cell, verified against the stored SHA-256; DataError naming
        the cell and the fix when they are missing or changed."""
        rows = self._arrays_rows({cell_key})
        if not rows:
            raise DataError(f"no arrays stored for cell {cell_key} in {self.root}")
        _, label, file_name, digest = rows[0]
        data = self._read_verified(file_name, digest)
        if isinstance(data, str):
            raise DataError(f"arrays of cell {label}: {data}; `xaibench run CONFIG --output "
                            f"{self.root}` recomputes them")
        with np.load(io.BytesIO(data)) as npz:
            return {name: npz[name] for name in npz.files}

    def _arrays_rows(self, cell_keys: set[str]) -> list[tuple[str, str, str, str]]:
        """(key, label, arrays file, SHA-256) of the done cells among ``cell_keys``."""
        with self._connect() as con:
            rows = con.execute("SELECT cell_key, explainer, masker, backend, architecture, "
                               "arrays_file, arrays_sha256 FROM cells WHERE status = 'done' "
                               "AND arrays_file IS NOT NULL").fetchall()
        return [(key, f"{explainer}/{masker or '-'}/{backend}:{architecture}", file_name, digest)
                for key, explainer, masker, backend, architecture, file_name, digest in rows
                if key in cell_keys]

    def _read_verified(self, file_name: str, digest: str) -> bytes | str:
        """The bytes of an arrays file, or why they cannot be used."""
        path = self.arrays_dir / file_name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return f"{path} is missing"
        except OSError as exc:
            return f"{path} is unreadable ({exc.strerror or exc})"
        if hashlib.sha256(data).hexdigest() != digest:
            return f"{path} does not match its SHA-256 in the store (changed or corrupt)"
        return data

    def progress(self) -> "Progress":
        """Done, failed and pending cells of the run that writes (or wrote) this store."""
        with self._connect() as con:
            rows = con.execute("SELECT status, explainer, masker, backend, architecture, error "
                               "FROM cells ORDER BY finished_at").fetchall()
        failures = tuple((f"{explainer}/{masker or '-'}/{backend}:{architecture}", error or "")
                         for status, explainer, masker, backend, architecture, error in rows
                         if status == "failed")
        return Progress(self.run_status(), self.get_meta("planned_cells"),
                        sum(row[0] == "done" for row in rows), failures)

    def frame(self, table: str) -> "pandas.DataFrame":  # noqa: F821
        """A whole table (models, cells or metrics) as a DataFrame, JSON columns decoded."""
        import pandas as pd

        if table not in {"models", "cells", "metrics"}:
            raise ValueError(f"unknown table {table!r}")
        with self._connect() as con:  # not pd.read_sql_query: it hides sqlite3's errors
            cursor = con.execute(f"SELECT * FROM {table}")
            df = pd.DataFrame.from_records(cursor.fetchall(), coerce_float=True,
                                           columns=[column[0] for column in cursor.description])
        for column in ("train_params", "evaluation", "params"):
            if column in df:
                df[column] = df[column].map(json.loads)
        if "higher_is_better" in df:
            df["higher_is_better"] = df["higher_is_better"].astype(bool)
        return df


#: what changed since each older schema version (shown when refusing such a store)
_CHANGES = {"1": "cell keys now include the data's fingerprint",
            "2": "faithfulness metrics are now scored under every [evaluation] ruler"}
_START_AFRESH = ("move it away, or start afresh with `xaibench run CONFIG --output {} "
                 "--replace` (discards its results)")
_WRITABLE = "make {} writable or choose another --output"


def _database_error(path: Path, exc: sqlite3.Error) -> DataError:
    """The one-line error for a failed database operation on ``path``."""
    text = str(exc)
    if "readonly" in text or "unable to open" in text:
        fix = _WRITABLE.format(path.parent)
    elif "locked" in text:
        fix = "another process holds it; wait for it to finish"
    else:
        fix = _START_AFRESH.format(path.parent)
    return DataError(f"{path}: {text}; {fix}")


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in con.execute(f"PRAGMA table_info({table})")}


def _missing_columns(con: sqlite3.Connection) -> list[str]:
    """"table T" for each table of the schema that ``con`` lacks, "T.column" for each column."""
    missing = []
    for table, columns in _COLUMNS.items():
        present = _columns(con, table)
        missing += ([f"{table}.{column}" for column in sorted(columns - present)] if present
                    else [f"table {table}"])
    return missing


def _schema_columns() -> dict[str, set[str]]:
    """The columns of each table of :data:`_SCHEMA` (read from an in-memory database)."""
    con = sqlite3.connect(":memory:")
    try:
        con.executescript(_SCHEMA)
        return {table: _columns(con, table) for table in ("meta", "models", "cells", "metrics")}
    finally:
        con.close()


_COLUMNS = _schema_columns()


# --- the results directory ----------------------------------------------------------------------
def require_store(root: Path) -> None:
    """ConfigError unless ``root`` is a directory holding a results store."""
    if not root.exists():
        raise ConfigError(f"results directory {root} does not exist; run "
                          f"`xaibench run CONFIG --output {root}` first")
    if not (root / _STORE_NAME).is_file():
        raise ConfigError(f"{root} holds no results store ({_STORE_NAME}); "
                          f"run `xaibench run CONFIG --output {root}` first")


def check_writable(root: Path) -> None:
    """Create ``root`` if needed; DataError if it is a file or cannot be written."""
    if root.exists() and not root.is_dir():
        raise DataError(f"results directory {root} is a file, not a directory; choose "
                        f"another --output")
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as exc:
        raise DataError(f"cannot write to results directory {root}: {exc.strerror or exc}; "
                        f"{_WRITABLE.format(root)}") from None


@contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold ``root``'s lock (``flock`` on :data:`LOCK_NAME`, which then holds this pid) for
    the block; DataError naming the holder if another process has it. The kernel releases
    the lock when its process ends, however it ends, so a killed run never blocks the next."""
    path = root / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DataError(f"cannot create the lock file {path}: {exc.strerror or exc}; "
                        f"{_WRITABLE.format(root)}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataError(f"{root} is in use by another xaibench run (pid {_pid(path)}); "
                            f"wait for it to finish or choose another --output") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def lock_holder(root: Path) -> str | None:
    """The pid (as recorded) of the process holding ``root``'s lock, or None when free."""
    try:
        fd = os.open(root / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return _pid(root / LOCK_NAME)
    finally:
        os.close(fd)  # also releases a shared lock taken above


def _pid(lock_path: Path) -> str:
    try:
        return lock_path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def discard(root: Path) -> None:
    """Remove the store and arrays in ``root`` (what ``--replace`` throws away)."""
    try:
        for name in (_STORE_NAME, f"{_STORE_NAME}-journal", f"{_STORE_NAME}-wal"):
            (root / name).unlink(missing_ok=True)
        if (root / "arrays").exists():
            shutil.rmtree(root / "arrays")
    except OSError as exc:
        raise DataError(f"cannot discard the results in {root}: {exc.strerror or exc}; "
                        f"{_WRITABLE.format(root)}") from None
