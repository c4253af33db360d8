"""SQLite results store: one transaction per finished cell, arrays in atomically written .npz.

Layout of a results directory::

    store.sqlite        tables meta, models, cells, metrics
    arrays/<key>.npz    attribution values, images, labels ... of one cell (path + SHA-256 in cells)

Reports are rendered from this store only.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from xaibench._files import write_atomic
from xaibench.errors import DataError

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
    category TEXT NOT NULL, PRIMARY KEY (cell_key, metric, image, output)
);
"""


@dataclass(frozen=True)
class ModelRecord:
    """A trained (or loaded) model and its evaluation on the test split."""

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


class Store:
    """The results store of one results directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.arrays_dir = self.root / "arrays"
        self.arrays_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "store.sqlite"
        with self._connect() as con:
            con.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30)
        try:
            with con:  # one transaction: commit on success, roll back on error
                yield con
        finally:
            con.close()

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
                "INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(record.cell_key, m.metric, m.image, m.output,
                  None if not np.isfinite(m.value) else float(m.value),
                  int(m.higher_is_better), m.category) for m in metrics])

    def _write_arrays(self, cell_key: str, arrays: dict[str, np.ndarray]) -> tuple[str, str]:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        data = buffer.getvalue()
        file_name = f"{cell_key}.npz"
        write_atomic(self.arrays_dir / file_name, data)
        return file_name, hashlib.sha256(data).hexdigest()

    # --- reading ------------------------------------------------------------------------------
    def done_keys(self) -> set[str]:
        """Keys of the cells that finished successfully."""
        with self._connect() as con:
            return {k for (k,) in con.execute("SELECT cell_key FROM cells WHERE status='done'")}

    def load_arrays(self, cell_key: str) -> dict[str, np.ndarray]:
        """The arrays of a finished cell, verified against the stored SHA-256."""
        with self._connect() as con:
            row = con.execute("SELECT arrays_file, arrays_sha256 FROM cells WHERE cell_key = ?",
                              (cell_key,)).fetchone()
        if row is None or row[0] is None:
            raise KeyError(f"no arrays stored for cell {cell_key}")
        path = self.arrays_dir / row[0]
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != row[1]:
            raise DataError(f"{path}: SHA-256 does not match the store (file changed or corrupt)")
        with np.load(io.BytesIO(data)) as npz:
            return {name: npz[name] for name in npz.files}

    def frame(self, table: str) -> "pandas.DataFrame":  # noqa: F821
        """A whole table (models, cells or metrics) as a DataFrame, JSON columns decoded."""
        import pandas as pd

        if table not in {"models", "cells", "metrics"}:
            raise ValueError(f"unknown table {table!r}")
        with self._connect() as con:
            df = pd.read_sql_query(f"SELECT * FROM {table}", con)
        for column in ("train_params", "evaluation", "params"):
            if column in df:
                df[column] = df[column].map(json.loads)
        if "higher_is_better" in df:
            df["higher_is_better"] = df["higher_is_better"].astype(bool)
        return df
