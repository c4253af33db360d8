"""A results store that is not SQLite, truncated, of another schema, or held by a run: one
DataError naming the file and the way out, never a traceback from sqlite3."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from xaibench.errors import DataError
from xaibench.experiment import runner
from xaibench.experiment.store import (SCHEMA_VERSION, CellRecord, MetricRow, Store, discard,
                                       locked)
from xaibench.report import run_status_note

AFRESH = r"move it away, or start afresh with `xaibench run CONFIG --output .* --replace`"


def _filled(root: Path) -> Store:
    """A store with a few hundred metric rows (several database pages) and one cell's arrays."""
    store = Store(root)
    record = CellRecord("k1", "digits", "torch", "mlp", "m1", "random", None, {}, 0, 2)
    rows = [MetricRow("additivity", image, 0, float(image), False, "fidelity")
            for image in range(400)]
    store.put_cell(record, {"values": np.zeros((2, 4, 4, 1, 1), np.float32)}, rows)
    store.set_meta("status", "finished")
    return store


def _sql(root: Path, *statements: str) -> None:
    with sqlite3.connect(root / "store.sqlite") as con:
        for statement in statements:
            con.execute(statement)


def test_a_file_that_is_not_sqlite_is_refused_naming_it_and_the_fix(tmp_path):
    (tmp_path / "store.sqlite").write_text("these are my notes, not a database\n" * 50)
    with pytest.raises(DataError, match=rf"{tmp_path}/store.sqlite: file is not a database; "
                                        rf"{AFRESH}"):
        Store(tmp_path)


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.9])
def test_a_truncated_store_is_refused_naming_it_and_the_fix(tmp_path, fraction):
    _filled(tmp_path / "whole")
    data = (tmp_path / "whole" / "store.sqlite").read_bytes()
    (tmp_path / "store.sqlite").write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(DataError, match=rf"{tmp_path}/store.sqlite(: database disk image is "
                                        rf"malformed| is corrupt \(SQLite: [^\n]*\)); {AFRESH}"):
        Store(tmp_path).frame("metrics")


def test_a_store_of_the_older_schema_is_refused_with_the_way_out(tmp_path):
    _filled(tmp_path)
    _sql(tmp_path, "DELETE FROM meta WHERE key = 'schema_version'")  # as version 1 wrote it
    with pytest.raises(DataError, match=rf"was written by an older xaibench \(store schema 1, "
                                        rf"this version reads {SCHEMA_VERSION}: cell keys now "
                                        rf"include the data's fingerprint\); {AFRESH}"):
        Store(tmp_path)


def test_a_store_of_schema_2_without_rulers_is_refused_with_the_way_out(tmp_path):
    _filled(tmp_path)
    # as version 2 wrote it: metric rows without a ruler
    _sql(tmp_path, "ALTER TABLE metrics RENAME TO old", "CREATE TABLE metrics AS SELECT "
         "cell_key, metric, image, output, value, higher_is_better, category FROM old",
         "DROP TABLE old", "UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with pytest.raises(DataError, match=rf"was written by an older xaibench \(store schema 2, "
                                        rf"this version reads {SCHEMA_VERSION}: faithfulness "
                                        rf"metrics are now scored under every \[evaluation\] "
                                        rf"ruler\); {AFRESH}"):
        Store(tmp_path)


def test_metric_rows_keep_their_ruler(tmp_path):
    store = Store(tmp_path)
    record = CellRecord("k1", "digits", "torch", "mlp", "m1", "random", None, {}, 0, 1)
    rows = [MetricRow("abpc", 0, 0, 0.5 + i, True, "faithfulness", ruler)
            for i, ruler in enumerate(["mean", "blur(2,2)"])]
    store.put_cell(record, {"values": np.zeros((1, 4, 4, 1, 1), np.float32)},
                   [*rows, MetricRow("gini", 0, 0, 0.1, True, "complexity")])
    frame = store.frame("metrics").set_index(["metric", "ruler"])["value"]
    assert frame.to_dict() == {("abpc", "mean"): 0.5, ("abpc", "blur(2,2)"): 1.5,
                               ("gini", ""): 0.1}


def test_a_store_of_a_newer_schema_is_refused(tmp_path):
    _filled(tmp_path)
    _sql(tmp_path, f"UPDATE meta SET value = '{SCHEMA_VERSION + 1}' WHERE key = 'schema_version'")
    with pytest.raises(DataError, match=r"written by a newer xaibench \(store schema "
                                        rf"{SCHEMA_VERSION + 1}, .*\); upgrade xaibench or "
                                        r"choose another --output"):
        Store(tmp_path)


def test_a_store_with_a_modified_schema_is_refused_naming_what_it_lacks(tmp_path):
    _filled(tmp_path)
    _sql(tmp_path, "ALTER TABLE cells DROP COLUMN arrays_sha256", "DROP TABLE models")
    with pytest.raises(DataError, match=rf"is not an xaibench results store \(it lacks table "
                                        rf"models, cells.arrays_sha256\); {AFRESH}"):
        Store(tmp_path)


def test_a_refused_store_is_reported_before_any_data_is_loaded(tmp_path, monkeypatch):
    from tests.reliability._runs import fast_config

    (tmp_path / "store.sqlite").write_bytes(b"\0" * 4096)
    monkeypatch.setattr(runner, "load_dataset", lambda config: pytest.fail("data was loaded"))
    with pytest.raises(DataError, match=rf"store.sqlite: file is not a database; {AFRESH}"):
        runner.run(fast_config(), tmp_path, progress=False)


def test_discard_removes_the_store_and_arrays_and_an_empty_file_opens_as_new(tmp_path):
    _filled(tmp_path)
    discard(tmp_path)
    assert not (tmp_path / "store.sqlite").exists() and not (tmp_path / "arrays").exists()
    (tmp_path / "store.sqlite").touch()  # e.g. left by an interrupted creation
    assert Store(tmp_path).done_keys() == set()


def test_status_of_a_run_that_died_is_interrupted_and_the_report_says_so(tmp_path):
    store = _filled(tmp_path)
    store.set_meta("status", "running")
    store.set_meta("pid", 4242)
    with locked(tmp_path):
        assert store.run_status() == "running"
        assert run_status_note(store) == f"a run (pid 4242) is still writing {tmp_path}: the " \
                                         "results are partial"
    assert store.run_status() == "interrupted"  # the lock is free: its process is gone
    assert run_status_note(store) == (
        f"the last run (pid 4242) was killed before it finished: the results are partial; "
        f"`xaibench run CONFIG --output {tmp_path}` resumes it")
    store.set_meta("status", "finished")
    assert run_status_note(store) is None
