"""Leaderboard, runtime and model tables: their numbers and how documents show them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from tests.unit.report._store import (DATASET, N_IMAGES, K, build_store, cell_arrays,
                                      cell_record, model_record)
from xaibench.experiment.store import Store
from xaibench.report import Results, leaderboard, model_table, runtime_table
from xaibench.report._formats import WRITERS
from xaibench.report.tables import flags, show_leaderboard, show_models, show_runtime

MARKDOWN = WRITERS["md"].notation


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    cells = build_store(root, extras=False)
    return Results.load(root), cells


def test_leaderboard_ranks_by_the_median_rank_over_ranked_metrics(full):
    results, cells = full
    board = leaderboard(results)
    assert [c for c in board.columns if c.endswith("_mean")] == \
        ["abpc_mean", "deletion_auc_mean", "additivity_mean"]  # no cost metric
    assert results.ranked_metrics == ["abpc", "deletion_auc"]  # additivity: shown, not ranked
    means = {"abpc": [-c.abpc for c in cells],
             "deletion_auc": [c.deletion_auc for c in cells]}  # as lower-is-better
    expected = np.median([rankdata(values) for values in means.values()], axis=0)
    by_cell = {(c.backend, c.explainer): rank for c, rank in zip(cells, expected)}
    got = {(row.backend, row.explainer): row.rank for row in board.itertuples()}
    assert got == pytest.approx(by_cell)
    assert list(board["rank"]) == sorted(expected)
    best = board.iloc[0]
    assert (best.backend, best.explainer) == ("keras", "partition")
    assert best.abpc_mean == pytest.approx(0.51) and best.images == N_IMAGES


def test_leaderboard_shown_bolds_the_best_of_each_column(full):
    results, _ = full
    rows = leaderboard(results)
    shown = show_leaderboard(rows, results.higher_is_better, MARKDOWN)
    assert list(shown.cells.columns) == ["backend", "explainer", "masker", "images",
                                         "median rank", "abpc ↑", "deletion auc ↓",
                                         "additivity ↓"]
    assert shown.cells.loc[0, "abpc ↑"] == "0.51 [0.49, 0.53]"  # spread ±0.03: bootstrap ±0.02
    # keras partition is first on abpc, second on deletion; torch partition the reverse
    assert shown.best["median rank"].tolist() == [True, True] + [False] * (len(rows) - 2)
    assert shown.best["abpc ↑"].tolist() == list(rows.abpc_mean == rows.abpc_mean.max())
    assert shown.best["deletion auc ↓"].tolist() == \
        list(rows.deletion_auc_mean == rows.deletion_auc_mean.min())
    assert not shown.best[["backend", "images"]].any().any()


def test_runtime_table(full):
    results, cells = full
    table = runtime_table(results)
    assert list(table["seconds_per_image"]) == sorted(table["seconds_per_image"])
    for cell in cells:
        row = table.query(f"backend == '{cell.backend}' and explainer == '{cell.explainer}'")
        assert row.seconds_per_image.item() == pytest.approx(cell.wall_seconds / N_IMAGES)
        assert row.evals_per_image.item() == pytest.approx(cell.model_evals / N_IMAGES)
        assert row.evals_per_second.item() == pytest.approx(cell.model_evals / cell.wall_seconds)
    shown = show_runtime(table, MARKDOWN)
    assert list(shown.cells.columns[-4:]) == ["images", "s / image", "evals / image",
                                              "evals / s"]
    assert shown.cells["evals / image"].tolist()[:2] == ["2", "3"]  # 10 / 4, 11 / 4 rounded
    fastest = table["evals_per_second"] == table["evals_per_second"].max()
    assert shown.best["evals / s"].tolist() == fastest.tolist()
    assert shown.best["s / image"].tolist() == [True] + [False] * (len(table) - 1)


def test_zero_seconds_give_no_rate(tmp_path):
    store = Store(tmp_path)
    store.put_model(model_record("torch"))
    store.put_cell(cell_record("torch", "deep", None, {}),  # 0 s and 0 evaluations
                   cell_arrays(np.zeros((N_IMAGES, K)), (8, 8, 1), seed=0))
    assert runtime_table(Results.load(tmp_path))["evals_per_second"].isna().all()


def test_model_table_names_where_copied_weights_come_from(tmp_path):
    store = Store(tmp_path)
    store.put_model(model_record("torch"))
    store.put_model(model_record("keras", train_params={"weights_from": "torch-digits"}))
    store.put_model(model_record("flax", train_params={"weights_from": "torch"}))
    table = model_table(Results.load(tmp_path))
    assert list(table.backend) == ["flax", "keras", "torch"]
    assert table.weights_from.tolist()[:2] == ["torch", "torch"] and table.weights_from.isna()[2]
    shown = show_models(table, MARKDOWN)
    assert list(shown.cells.columns) == ["backend", "architecture", "weights from", "seed",
                                         "accuracy", "training s"]
    assert shown.cells["weights from"].tolist() == ["torch", "torch", "—"]


def test_model_table_shows_architecture_params_such_as_vgg16_weights(tmp_path):
    store = Store(tmp_path)
    record = model_record("keras")
    store.put_model(replace(record, evaluation={**record.evaluation, "params": {
        "weights": "none", "input_size": 224}}))
    table = model_table(Results.load(tmp_path))
    assert table["params"].tolist() == ["input_size=224, weights=none"]
    shown = show_models(table, MARKDOWN)
    assert shown.cells["params"].tolist() == ["input_size=224, weights=none"]


def test_model_table_without_copied_weights(full):
    results, _ = full
    table = model_table(results)
    assert table["weights_from"].isna().all() and set(table["dataset"]) == {DATASET}
    assert "weights from" not in show_models(table, MARKDOWN).cells


def test_negligible_differences_tie_in_the_rank():
    import pandas as pd

    from xaibench.report.tables import _snap_to_spread

    means = pd.Series([0.0, 3e-7, 4.2, 11.7])
    ranks = _snap_to_spread(means).rank(method="min")
    assert ranks.tolist() == [1.0, 1.0, 3.0, 4.0]
    assert _snap_to_spread(pd.Series([2.0, 2.0])).tolist() == [2.0, 2.0]


def test_images_where_a_metric_is_undefined_are_counted_and_shown(tmp_path):
    from xaibench.experiment.store import MetricRow

    store = Store(tmp_path)
    store.put_model(model_record("torch"))
    abpc = np.arange(N_IMAGES * K, dtype=float).reshape(N_IMAGES, K)
    abpc[:2] = np.nan  # images 0 and 1: undefined (stored as NULL)
    abpc[2, 0] = np.nan  # image 2: one output left, still defined
    rows = [MetricRow("abpc", i, k, abpc[i, k], True, "faithfulness")
            for i in range(N_IMAGES) for k in range(K)]
    store.put_cell(cell_record("torch", "deep", None, {}),
                   cell_arrays(np.zeros((N_IMAGES, K)), (8, 8, 1), seed=0), rows)
    results = Results.load(tmp_path)
    board = leaderboard(results)
    assert board["abpc_undefined"].tolist() == [2]
    assert board["abpc_mean"].item() == pytest.approx(np.mean([abpc[2, 1], abpc[3].mean()]))
    shown = show_leaderboard(board, results.higher_is_better, MARKDOWN)
    assert shown.cells.loc[0, "abpc ↑"].endswith(" (2 undefined)")

def test_no_undefined_count_is_shown_where_every_image_has_a_value(full):
    results, _ = full
    board = leaderboard(results)
    assert (board[["abpc_undefined", "deletion_auc_undefined"]] == 0).all().all()
    shown = show_leaderboard(board, results.higher_is_better, MARKDOWN)
    assert not shown.cells.map(lambda text: "undefined" in text).any().any()


def _board(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    """A leaderboard-shaped frame: (backend, explainer, abpc mean, deletion_auc mean) rows."""
    return pd.DataFrame([{"dataset": "d", "backend": backend, "architecture": "cnn",
                          "explainer": explainer, "masker": "", "params": "",
                          "abpc_mean": abpc, "deletion_auc_mean": deletion}
                         for backend, explainer, abpc, deletion in rows])


def test_rows_that_do_not_beat_both_baselines_of_their_model_are_flagged():
    higher = {"abpc": True, "deletion_auc": False}
    board = _board([("torch", "random", 0.00, 0.50), ("torch", "edge", 0.20, 0.30),
                    ("torch", "partition", 0.30, 0.20),  # beats both on both metrics
                    ("torch", "deep", 0.10, 0.40),  # beats random only
                    ("torch", "gradient", -0.1, 0.60),  # beats neither
                    ("torch", "permutation", 0.25, 0.35),  # one of two metrics: no majority
                    ("keras", "random", 0.40, 0.10),  # keras has no edge baseline
                    ("keras", "deep", 0.10, 0.40)])
    below = dict(zip(board["backend"] + ":" + board["explainer"],
                     flags(board, ["abpc", "deletion_auc"], higher)))
    assert below == {"torch:random": "", "torch:edge": "", "torch:partition": "",
                     "torch:deep": "edge", "torch:gradient": "random, edge",
                     "torch:permutation": "edge", "keras:random": "", "keras:deep": "random"}


def test_without_baselines_nothing_is_flagged_and_the_marker_follows_the_flag(full):
    results, _ = full
    board = leaderboard(results)
    assert (board["below_baselines"] == "").all()  # no random or edge row in this store
    flagged = board.assign(below_baselines=["random"] + [""] * (len(board) - 1))
    shown = show_leaderboard(flagged, results.higher_is_better, MARKDOWN)
    assert shown.cells.loc[0, "explainer"].endswith(" †")
    assert not shown.cells.loc[1:, "explainer"].str.contains("†").any()


def test_home_advantage_compares_each_maskers_own_ruler_with_the_others(tmp_path):
    from xaibench.experiment.store import MetricRow
    from xaibench.report.tables import home_advantage_table, show_home_advantage

    store = Store(tmp_path)
    store.put_model(model_record("torch"))
    rulers = ["blur(3,3)", "inpaint_telea", "mean"]
    # per configuration and ruler: (abpc, deletion_auc), the same for every image and output
    scores = {("partition", "blur(3,3)"): {"blur(3,3)": (0.6, 0.1), "inpaint_telea": (0.2, 0.3),
                                           "mean": (0.4, 0.4)},
              ("permutation", "noisy_linear"): {r: (0.5, 0.2) for r in rulers},  # not a ruler
              ("deep", None): {r: (0.3, 0.3) for r in rulers}}  # no masker
    for (explainer, masker), by_ruler in scores.items():
        rows = [MetricRow(name, i, k, values[j], higher, "faithfulness", ruler)
                for ruler, values in by_ruler.items()
                for j, (name, higher) in enumerate([("abpc", True), ("deletion_auc", False)])
                for i in range(N_IMAGES) for k in range(K)]
        rows += [MetricRow("gini", i, 0, 0.5, True, "complexity") for i in range(N_IMAGES)]
        store.put_cell(cell_record("torch", explainer, masker, {}),
                       cell_arrays(np.zeros((N_IMAGES, K)), (8, 8, 1), seed=0), rows)
    results = Results.load(tmp_path)
    assert {"abpc@mean", "deletion_auc@blur(3,3)", "gini"} <= set(results.quality_metrics)
    home = home_advantage_table(results)
    assert home[["explainer", "masker", "metric"]].values.tolist() == [
        ["partition", "blur(3,3)", "abpc"], ["partition", "blur(3,3)", "deletion_auc"]]
    abpc, deletion = home.iloc[0], home.iloc[1]
    assert (abpc.own, abpc.others_mean, abpc.others_median) == pytest.approx((0.6, 0.3, 0.3))
    assert abpc.advantage == pytest.approx(0.6 - 0.3)  # higher is better: better at home
    assert (deletion.own, deletion.others_mean) == pytest.approx((0.1, 0.35))
    assert deletion.advantage == pytest.approx(0.35 - 0.1)  # lower is better: better at home
    shown = show_home_advantage(home, MARKDOWN)
    assert shown.cells["advantage"].tolist() == ["+0.3", "+0.25"]
    assert shown.best["advantage"].tolist() == [True, False]
