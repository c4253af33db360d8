"""Plain-text views for the terminal: two runs' leaderboards compared, the summary after a run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from xaibench.errors import DataError
from xaibench.report._formats import Notation
from xaibench.report.tables import (IDENTITY, ORDER, Results, config_labels, failure_table,
                                    header, leaderboard, summary_table)

if TYPE_CHECKING:
    import pandas as pd

PLAIN = Notation("↑", "↓", "±", str)
#: the cost compared next to the quality metrics (from the cells, not a metric row)
_SECONDS = "seconds_per_image"


def _results(run: "Results | str | Path") -> Results:
    return run if isinstance(run, Results) else Results.load(run)


def _means(results: Results) -> "pd.DataFrame":
    """One row per configuration and metric (quality metrics, then seconds per image): the
    identity, ``metric``, ``higher_is_better`` and ``value`` (the mean over images)."""
    columns = {f"{metric}_mean": metric for metric in results.quality_metrics}
    long = (summary_table(results).rename(columns=columns)
            .melt(id_vars=IDENTITY, value_vars=[*columns.values(), _SECONDS], var_name="metric"))
    higher = {**results.higher_is_better, _SECONDS: False}
    return long.assign(higher_is_better=long["metric"].map(higher))


def compare(run_a: "Results | str | Path", run_b: "Results | str | Path") -> "pd.DataFrame":
    """Two runs' leaderboards side by side: one row per configuration (identity) and metric,
    with ``higher_is_better``, the means ``a`` and ``b`` (NaN where a run lacks the row),
    ``difference`` (b − a) and ``change`` ("better", "worse", "same" or "" when missing).
    ``attrs["runs"]`` holds the two runs' directories. DataError when no row has both means:
    the runs share no configuration, there is nothing to compare."""
    a, b = _results(run_a), _results(run_b)
    table = (_means(a).rename(columns={"value": "a"})
             .merge(_means(b).rename(columns={"value": "b"}), how="outer",
                    on=[*IDENTITY, "metric"], suffixes=("", "_b")))
    if not (table["a"].notna() & table["b"].notna()).any():
        raise DataError(f"nothing to compare: {a.store.root} ({_holding(a)}) and "
                        f"{b.store.root} ({_holding(b)}) share no finished configuration "
                        f"with a metric; compare two runs of one experiment (e.g. another "
                        f"seed or version)")
    table["higher_is_better"] = table["higher_is_better"].fillna(table.pop("higher_is_better_b"))
    table["difference"] = table["b"] - table["a"]
    gain = np.sign(table["difference"]) * np.where(table["higher_is_better"], 1, -1)
    table["change"] = np.select([gain > 0, gain < 0, gain == 0], ["better", "worse", "same"], "")
    table = table.sort_values(["dataset", "metric", *ORDER[1:]], ignore_index=True)
    table.attrs["runs"] = (str(a.store.root), str(b.store.root))
    return table[[*IDENTITY, "metric", "higher_is_better", "a", "b", "difference", "change"]]


def _holding(results: Results) -> str:
    """What a run holds, in a few words: its finished cells and datasets."""
    done = results.cells[results.cells["status"] == "done"]
    if done.empty:
        return "no finished cell"
    return f"{len(done)} finished cell(s) of {', '.join(sorted(set(done['dataset'])))}"


def _number(value: float, spec: str = ".4g") -> str:
    return "—" if np.isnan(value) else format(value, spec)


def format_comparison(table: "pd.DataFrame") -> str:
    """A :func:`compare` table as aligned plain text, one block per dataset."""
    run_a, run_b = table.attrs.get("runs", ("a", "b"))
    blocks = [f"a: {run_a}\nb: {run_b}"]
    for dataset, rows in table.groupby("dataset", sort=False):
        shown = rows.assign(
            configuration=config_labels(rows),
            metric=[header(m, h, PLAIN) for m, h in zip(rows["metric"], rows["higher_is_better"])],
            a=rows["a"].map(_number), b=rows["b"].map(_number),
            difference=rows["difference"].map(lambda d: _number(d, "+.3g")))
        shown = shown.set_index(["metric", "configuration"])  # index: left-aligned, grouped
        blocks.append(f"{dataset}\n" + shown[["a", "b", "difference", "change"]].to_string())
    return "\n\n".join(blocks)


def summary_text(run: "Results | str | Path") -> str:
    """The compact summary printed after a run: per dataset, each configuration's rank, metric
    means and seconds per image, best rank first; then the number of failed cells."""
    import pandas as pd

    results = _results(run)
    board = leaderboard(results).merge(summary_table(results)[[*IDENTITY, _SECONDS]],
                                       on=IDENTITY)
    higher = results.higher_is_better
    blocks = []
    for dataset, rows in board.groupby("dataset"):
        columns = {"rank": rows["rank"].map(lambda r: _number(r, ".2f"))}
        columns |= {header(metric, higher[metric], PLAIN): rows[f"{metric}_mean"].map(
            lambda v: _number(v, ".3g")) for metric in results.quality_metrics}
        columns["s / image"] = rows[_SECONDS].map(lambda v: _number(v, ".3g"))
        shown = pd.DataFrame(columns).set_axis(config_labels(rows))  # labels: left-aligned
        blocks.append(f"{dataset}\n{shown.to_string()}")
    failed = len(failure_table(results))
    if failed:
        blocks.append(f"{failed} failed cell(s): see the report's failed cells")
    return "\n\n".join(blocks) or "no finished cells"
