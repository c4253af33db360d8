"""Rank statistics of one dataset's configurations, from the leaderboard and the per-image
scores: agreement of the metrics' rankings, Friedman tests with Nemenyi critical differences,
and quality against cost along budget sweeps (the maths is in :mod:`.statistics`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from xaibench import registry
from xaibench.report._formats import Notation, Shown
from xaibench.report.statistics import Friedman, friedman, rank_agreement
from xaibench.report.tables import (IDENTITY, Results, config_labels, show_plain,
                                    shown_identity)

if TYPE_CHECKING:
    import pandas as pd

FRIEDMAN_COLUMNS = ["metric", "configurations", "blocks", "statistic", "p_value",
                    "critical_difference"]


def metric_agreement(board: "pd.DataFrame", metrics: list[str],
                     higher_is_better: dict[str, bool]) -> "pd.DataFrame":
    """Kendall τ between the rankings of ``board``'s rows (one dataset's leaderboard) by every
    two of ``metrics`` (their means); index and columns are the metrics."""
    means = board[[f"{m}_mean" for m in metrics]].set_axis(metrics, axis=1).astype(float)
    return rank_agreement(means, higher_is_better)


@dataclass(frozen=True)
class MetricTest:
    """The Friedman test of one metric over images: configuration labels and the result."""

    metric: str
    labels: list[str]
    result: Friedman


def block_scores(results: Results, dataset: str, metric: str) -> "pd.DataFrame":
    """Scores of ``metric`` with one row per block (the i-th explained image of a cell) and one
    column per configuration of ``dataset`` (labelled as in the tables), each the mean over the
    configuration's seeds; NaN where a configuration lacks the image."""
    configurations = results.configurations(dataset)
    labels = dict(zip(map(tuple, configurations[IDENTITY].to_numpy()),
                      config_labels(configurations)))
    done = results.cells[(results.cells["status"] == "done")
                         & (results.cells["dataset"] == dataset)]
    scores = results.scores[results.scores["metric"] == metric].merge(
        done[["cell_key", *IDENTITY]], on="cell_key")
    scores["configuration"] = [labels[tuple(row)] for row in scores[IDENTITY].to_numpy()]
    return (scores.groupby(["image", "configuration"])["value"].mean().unstack()
            .reindex(columns=list(labels.values())))


def friedman_tests(results: Results, dataset: str) -> list[MetricTest]:
    """The Friedman test over images of each ranked metric of ``dataset`` where there are at
    least 3 configurations and 2 images they all have."""
    tests = []
    for metric in results.ranked_metrics:
        blocks = block_scores(results, dataset, metric).dropna(axis=1, how="all")
        result = friedman(blocks.to_numpy(), results.higher_is_better[metric])
        if result is not None:
            tests.append(MetricTest(metric, list(blocks.columns), result))
    return tests


def friedman_table(tests: list[MetricTest]) -> "pd.DataFrame":
    """One row per test: metric, configurations (k), blocks (N), χ²_F, p-value and the
    Nemenyi critical difference of average ranks (α = 0.05)."""
    import pandas as pd

    return pd.DataFrame([[t.metric, len(t.labels), t.result.blocks, t.result.statistic,
                          t.result.p_value, t.result.critical_difference] for t in tests],
                        columns=FRIEDMAN_COLUMNS)


def budget_table(results: Results, board: "pd.DataFrame") -> "pd.DataFrame":
    """The rows of ``board`` (one dataset's leaderboard) of budget sweeps: configurations of an
    explainer declaring a budget param (registry entry ``budget``) that differ only in it, at
    least two budgets per sweep. Adds ``budget`` (the param's value), ``evals_per_image``
    (measured) and ``sweep``, a label of the sweep (the identity without the budget)."""
    import pandas as pd

    cells = results.store.frame("cells")
    rows = []
    for cell in cells[cells["status"] == "done"].itertuples():
        param = registry.explainers.entry(cell.explainer).budget \
            if cell.explainer in registry.explainers else None
        if param is None or param not in cell.params:
            continue
        rest = {k: v for k, v in cell.params.items() if k not in ("seed", param)}
        rows.append({"cell_key": cell.cell_key, "budget": cell.params[param],
                     "rest": ", ".join(f"{k}={v}" for k, v in sorted(rest.items()))})
    if not rows:
        return board.iloc[:0].assign(budget=[], evals_per_image=[], sweep=[])
    budgets = pd.DataFrame(rows).merge(results.cells[["cell_key", *IDENTITY, "n_images",
                                                      "model_evals"]], on="cell_key")
    per_row = budgets.groupby(IDENTITY, as_index=False).agg(
        budget=("budget", "first"), rest=("rest", "first"), images=("n_images", "sum"),
        evals=("model_evals", "sum"))
    table = board.merge(per_row.drop(columns="images"), on=IDENTITY)
    table["evals_per_image"] = table.pop("evals") / table["images"]
    sweep = [c for c in shown_identity(table) if c != "params"]
    table["sweep"] = [" / ".join(str(v) for v in [*row[sweep], row["rest"]] if v != "")
                      for _, row in table.iterrows()]
    table = table.drop(columns="rest")
    counts = table.groupby("sweep")["budget"].transform("nunique")
    return table[counts >= 2].sort_values(["sweep", "budget"], ignore_index=True)


def show_friedman(rows: "pd.DataFrame", notation: Notation) -> Shown:
    """Friedman tests as strings."""
    return show_plain(rows.assign(metric=rows["metric"].str.replace("_", " ")), ["metric"], {
        "k": ("configurations", "d"), "N": ("blocks", "d"), "chi²": ("statistic", ".3g"),
        "p": ("p_value", ".2g"), "CD": ("critical_difference", ".3g")}, notation)


def show_metric_agreement(matrix: "pd.DataFrame", notation: Notation) -> Shown:
    """A metric agreement matrix as strings, metric names as row and column headers."""
    names = [name.replace("_", " ") for name in matrix.columns]
    rows = matrix.set_axis(names, axis=1).reset_index(names="metric")
    rows["metric"] = names
    return show_plain(rows, ["metric"], {name: (name, ".2f") for name in names}, notation)
