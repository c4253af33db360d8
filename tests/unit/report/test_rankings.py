"""Rank statistics, seed spread and budget sweeps of a small real run (torch, digits)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.unit.experiment._tiny import TINY_TOML
from xaibench.experiment.config import parse_config
from xaibench.experiment.runner import run as run_experiment
from xaibench.report import Results, leaderboard, render
from xaibench.report.rankings import budget_table, friedman_tests, metric_agreement
from xaibench.report.tables import seed_table

BUDGETS = (20, 60, 200)
#: the faithfulness metrics under the run's one ruler
ABPC, DELETION = "abpc@blur(3,3)", "deletion_auc@blur(3,3)"
#: partition swept over three budgets, the random baseline over three seeds
SWEEP = (TINY_TOML
         .replace('maskers = ["blur(3,3)"]\nparams = { max_evals = 40 }',
                  f'maskers = ["blur(3,3)"]\nbudget = {list(BUDGETS)}')
         .replace('metrics = ["additivity"]',
                  'metrics = ["additivity", "deletion_auc", "abpc", "gini"]')
         .replace("first = 2", "first = 3")
         + '\n[[explainers]]\nname = "random"\nseeds = [0, 1, 2]\n'
         + '\n[evaluation]\nrulers = ["blur(3,3)"]\n')


@pytest.fixture(scope="module")
def swept(tmp_path_factory, cache) -> tuple[Path, Results]:
    root = tmp_path_factory.mktemp("sweep")
    run_experiment(parse_config(SWEEP), root, progress=False, cache_dir=cache)
    return root, Results.load(root)


def test_seeds_are_pooled_per_configuration_and_their_spread_reported(swept):
    _, results = swept
    board = leaderboard(results)
    assert sorted(board["explainer"]) == ["deep", "partition", "partition", "partition",
                                          "random"]
    assert board.set_index("explainer")["cells"].to_dict()["random"] == 3
    spread = seed_table(results)
    assert spread["explainer"].tolist() == ["random"]  # the only one run with several seeds
    assert spread["seeds"].tolist() == [3]
    # noise attributions drawn with other seeds differ, and so do their scores
    assert spread["gini_seed_std"].iloc[0] > 0 and spread[f"{ABPC}_seed_std"].iloc[0] > 0


def test_a_budget_sweep_gives_quality_against_measured_evaluations(swept):
    _, results = swept
    sweeps = budget_table(results, leaderboard(results))
    assert sweeps["budget"].tolist() == list(BUDGETS)
    assert sweeps["sweep"].nunique() == 1 and sweeps["explainer"].eq("partition").all()
    evals = sweeps["evals_per_image"].to_numpy()
    assert np.all(np.diff(evals) > 0) and np.all(evals <= np.array(BUDGETS) + 1)
    assert (sweeps[f"{ABPC}_low"] <= sweeps[f"{ABPC}_mean"]).all()
    assert (sweeps[f"{ABPC}_mean"] <= sweeps[f"{ABPC}_high"]).all()


def test_friedman_and_metric_agreement_cover_the_ranked_metrics(swept):
    _, results = swept
    assert results.ranked_metrics == [ABPC, DELETION, "gini"]  # additivity is not
    tests = friedman_tests(results, "digits")
    assert [t.metric for t in tests] == results.ranked_metrics
    assert all(len(t.labels) == 5 and t.result.blocks == 3 for t in tests)
    assert all(0 <= t.result.p_value <= 1 for t in tests)
    matrix = metric_agreement(leaderboard(results), results.ranked_metrics,
                              results.higher_is_better)
    assert list(matrix.index) == results.ranked_metrics
    assert np.allclose(matrix.to_numpy(), matrix.to_numpy().T, equal_nan=True)


def test_report_shows_the_statistics_sections_and_figures(swept):
    root, _ = swept
    render(root, formats=["md", "csv"])
    text = (root / "report.md").read_text()
    for heading in ("### Leaderboard", "### Seed variance", "### Metric agreement",
                    "### Significance", "### Cost"):
        assert heading in text
    assert "† : " not in text and "†: does not beat the random baseline" in text
    assert "additivity: shown, not ranked" in text
    for figure in ("budget", "cd", "metric_agreement"):
        assert (root / "figures" / f"{figure}_digits.png").is_file()
    for table in ("seeds", "metric_agreement_digits", "friedman_digits"):
        assert (root / "tables" / f"{table}.csv").is_file()


def test_cd_diagram_draws_a_bar_per_group_and_a_line_per_configuration(tmp_path, monkeypatch):
    from matplotlib.image import imread

    from xaibench.report import plots
    from xaibench.report.rankings import MetricTest
    from xaibench.report.statistics import Friedman

    result = Friedman(np.array([2.8, 1.0, 3.0, 1.5]), 10, 12.0, 0.007, 1.6, 0.05)
    test = MetricTest("abpc", ["a", "b", "c", "d"], result)
    drawn, real = [], plots._cd_panel
    monkeypatch.setattr(plots, "_cd_panel", lambda ax, t: (real(ax, t), drawn.append(ax)))
    path = plots.cd_figure([test], "digits", tmp_path / "cd.png")
    (ax,) = drawn
    bars = [line for line in ax.lines if line.get_linewidth() == 3]
    assert sorted(tuple(np.round(line.get_xdata(), 2)) for line in bars) == \
        [(0.97, 1.53), (1.47, 3.03)]  # groups (b, d) and (d, a, c), 0.03 past their ranks
    assert {text.get_text() for text in ax.texts} >= {"a (2.80)", "b (1.00)", "c (3.00)",
                                                      "d (1.50)", "CD = 1.60"}
    assert imread(path).shape[0] > 100
    assert plots.cd_figure([], "digits", tmp_path / "none.png") is None
