"""Terminal views: two runs' leaderboards compared, and the summary printed after a run."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.report._store import DATASET, build_store, cell_record, metric_rows
from xaibench.experiment.store import Store
from xaibench.report import compare, format_comparison, summary_text


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run a; run b: torch/deep with a better abpc, a worse deletion AUC and twice the time,
    keras/permutation failed."""
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    build_store(a, extras=False)
    cells = build_store(b, failed={("keras", "permutation")}, extras=False)
    deep = next(c for c in cells if (c.backend, c.explainer) == ("torch", "deep"))
    store = Store(b)
    store.put_cell(cell_record("torch", "deep", None, {"background": 16},
                               wall_seconds=2 * deep.wall_seconds, model_evals=deep.model_evals),
                   store.load_arrays(deep.key),
                   metric_rows(deep.gaps, deep.abpc + 0.05, deep.deletion_auc + 0.1, 0.0))
    return a, b


def _row(table, backend: str, explainer: str, metric: str):
    rows = table.query(f"backend == '{backend}' and explainer == '{explainer}' "
                       f"and metric == '{metric}'")
    assert len(rows) == 1
    return rows.iloc[0]


def test_compare(runs):
    a, b = runs
    table = compare(a, b)
    assert list(table.columns[-6:]) == ["metric", "higher_is_better", "a", "b", "difference",
                                        "change"]
    assert set(table["metric"]) == {"abpc", "deletion_auc", "additivity", "seconds_per_image"}
    assert len(table) == 4 * 6 and table.attrs["runs"] == (str(a), str(b))
    abpc = _row(table, "torch", "deep", "abpc")
    assert (abpc.a, abpc.b, abpc.difference) == pytest.approx((0.3, 0.35, 0.05))
    assert abpc.change == "better"
    assert _row(table, "torch", "deep", "deletion_auc").change == "worse"  # lower is better
    seconds = _row(table, "torch", "deep", "seconds_per_image")
    assert seconds.b == pytest.approx(2 * seconds.a) and seconds.change == "worse"
    assert _row(table, "torch", "partition", "abpc").change == "same"
    missing = _row(table, "keras", "permutation", "abpc")
    assert np.isnan(missing.b) and missing.a == pytest.approx(0.41) and missing.change == ""


def test_format_comparison(runs):
    text = format_comparison(compare(*runs))
    lines = text.splitlines()
    assert lines[:3] == [f"a: {runs[0]}", f"b: {runs[1]}", ""] and lines[3] == DATASET
    abpc = lines.index(next(line for line in lines if line.startswith("abpc ↑")))
    deep = next(line for line in lines[abpc:] if "torch / deep" in line)
    assert deep.split()[-4:] == ["0.3", "0.35", "+0.05", "better"]
    assert any("keras / permutation" in line and "—" in line for line in lines)


def test_summary_text(runs):
    text = summary_text(runs[1])
    lines = text.splitlines()
    assert lines[0] == DATASET
    assert lines[1].split() == ["rank", "abpc", "↑", "deletion", "auc", "↓", "additivity", "↓",
                                "s", "/", "image"]
    assert lines[2].startswith("keras / partition / blur(3,3)") and " 0.51 " in lines[2]
    assert len(lines) == 2 + 5 + 2
    assert lines[-1] == "1 failed cell(s): see the report's failed cells"
    ranks = [float(line.split()[-5]) for line in lines[2:7]]
    assert ranks == sorted(ranks)


def test_summary_of_a_store_without_finished_cells(tmp_path):
    Store(tmp_path)
    assert summary_text(tmp_path) == "no finished cells"
