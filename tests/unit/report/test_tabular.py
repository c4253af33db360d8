"""Tabular report sections on hand-made arrays: mean |SHAP|, the Kendall τ of feature
rankings, the beeswarm stacking and the figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from scipy.stats import kendalltau

from xaibench.report._formats import WRITERS
from xaibench.report.tables import Results
from xaibench.report.tabular import (_beeswarm_panel, feature_names, importance_figure, mean_abs_shap,
                                     ranking_agreement, show_top_features, swarm_offsets)

FEATURES = ["age", "bmi", "bp", "s1", "s2"]


def _importance(*rows: list[float]) -> pd.DataFrame:
    return pd.DataFrame(rows, index=[f"config {i}" for i in range(len(rows))],
                        columns=FEATURES)


def test_mean_abs_shap_averages_over_images_and_outputs():
    values = np.zeros((2, 1, 3, 1, 2))
    values[0, 0, :, 0, 0] = [1, -2, 0]
    values[1, 0, :, 0, 0] = [-3, 0, 4]
    values[:, 0, :, 0, 1] = -values[:, 0, :, 0, 0]  # a binary classifier's other class
    np.testing.assert_allclose(mean_abs_shap(values), [2, 1, 2])


def test_ranking_agreement_is_kendall_tau_of_the_feature_rankings():
    agreement = ranking_agreement(_importance([5, 4, 3, 2, 1], [50, 40, 30, 20, 10],
                                              [1, 2, 3, 4, 5], [3, 5, 1, 4, 2]))
    assert list(agreement.index) == [f"config {i}" for i in range(4)]
    np.testing.assert_allclose(np.diag(agreement), 1.0)
    assert agreement.loc["config 0", "config 1"] == pytest.approx(1.0)  # same order
    assert agreement.loc["config 0", "config 2"] == pytest.approx(-1.0)  # reversed
    expected = kendalltau([5, 4, 3, 2, 1], [3, 5, 1, 4, 2]).statistic
    assert agreement.loc["config 0", "config 3"] == pytest.approx(expected)
    np.testing.assert_allclose(agreement, agreement.T)


def test_ranking_agreement_of_a_constant_ranking_is_undefined():
    agreement = ranking_agreement(_importance([1, 1, 1, 1, 1], [5, 4, 3, 2, 1]))
    assert np.isnan(agreement.loc["config 0", "config 1"])


def test_swarm_offsets_stack_the_dots_of_a_bin():
    assert np.all(swarm_offsets(np.linspace(0, 1, 10), bins=10) == 0)  # one dot per bin
    offsets = swarm_offsets(np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0]), bins=4, height=0.4)
    assert offsets[5] == 0  # alone in its bin
    stacked = offsets[:5]
    assert len(set(stacked)) == 5 and stacked[0] == 0  # distinct heights, the first centred
    assert np.abs(stacked).max() == pytest.approx(0.4)
    assert sorted(stacked) == pytest.approx([-0.4, -0.2, 0.0, 0.2, 0.4])
    assert swarm_offsets(np.zeros(0)).shape == (0,)
    assert np.all(swarm_offsets(np.full(1, 3.0)) == 0)


def test_beeswarm_colours_span_the_scale_for_standardised_features():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = np.array([[-2.5, 7.0], [0.0, 7.0], [3.0, 7.0]])  # z-scores; a constant feature
    figure, ax = plt.subplots()
    _beeswarm_panel(ax, np.zeros_like(data), data, ["z", "c"], np.array([0, 1]))
    constant, standardised = (dots.get_array() for dots in ax.collections)
    np.testing.assert_allclose(standardised, [0.0, 2.5 / 5.5, 1.0])
    np.testing.assert_array_equal(constant, 0.5)
    plt.close(figure)


def test_top_features_are_named_largest_first():
    shown = show_top_features(_importance([0.1, 0.5, 0.3, 0.0, 0.2]), WRITERS["md"].notation,
                              top=3)
    assert shown.cells.iloc[0].tolist() == ["config 0", "bmi (0.5)", "bp (0.3)", "s2 (0.2)"]


def test_importance_figure(tmp_path):
    path = importance_figure(_importance([0.1, 0.5, 0.3, 0.0, 0.2], [1, 2, 3, 4, 5]), "d",
                             tmp_path / "importance.png")
    assert path == tmp_path / "importance.png" and path.stat().st_size < 200_000
    height, width, _ = imread(path).shape
    assert width > height > 100
    assert path.with_suffix(".svg").is_file()
    assert importance_figure(pd.DataFrame(), "d", tmp_path / "none.png") is None


def test_feature_names_come_from_the_store_meta():
    results = Results(store=None, meta={"feature_names": {"rows": FEATURES}}, models=None,
                      cells=None, scores=None)
    assert feature_names(results, "rows") == FEATURES
    assert feature_names(results, "digits") is None
