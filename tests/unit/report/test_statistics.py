"""Statistics of a comparison checked against closed forms, hand-computed values and scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from xaibench.errors import XaibenchError
from xaibench.report.statistics import (Friedman, beats, bootstrap_ci, critical_difference,
                                        friedman, median_rank, nemenyi_q, rank_agreement, ranks,
                                        seed_std)


def test_bootstrap_interval_of_a_constant_is_a_point():
    assert bootstrap_ci(np.full(20, 0.7)) == pytest.approx((0.7, 0.7))


def test_bootstrap_interval_covers_the_mean_and_narrows_like_one_over_root_n(test_seed):
    rng = np.random.default_rng(test_seed)
    small, large = rng.normal(3.0, 1.0, 50), rng.normal(3.0, 1.0, 800)
    low, high = bootstrap_ci(small, seed=test_seed)
    assert low < small.mean() < high
    # the percentile interval of a normal mean is close to ± 1.96 σ / sqrt(n)
    assert high - low == pytest.approx(2 * 1.96 * small.std() / np.sqrt(50), rel=0.25)
    wide, narrow = high - low, np.subtract(*bootstrap_ci(large, seed=test_seed)[::-1])
    assert narrow / wide == pytest.approx(np.sqrt(50 / 800), rel=0.3)


def test_bootstrap_is_seeded_skips_nans_and_needs_two_values():
    sample = np.array([1.0, np.nan, 2.0, 4.0, 8.0])
    assert bootstrap_ci(sample, seed=3) == bootstrap_ci(sample, seed=3)
    assert bootstrap_ci(sample[~np.isnan(sample)], seed=3) == bootstrap_ci(sample, seed=3)
    assert np.isnan(bootstrap_ci(np.array([1.0, np.nan]))[0])
    with pytest.raises(XaibenchError, match="level"):
        bootstrap_ci(sample, level=95)


def test_ranks_follow_each_metrics_direction_and_the_median_aggregates_them():
    means = pd.DataFrame({"abpc": [0.3, 0.5, 0.4], "deletion": [0.2, 0.1, 0.3],
                          "gini": [0.9, 0.1, 0.1]})
    higher = {"abpc": True, "deletion": False, "gini": True}
    got = ranks(means, higher)
    assert got["abpc"].tolist() == [3, 1, 2]
    assert got["deletion"].tolist() == [2, 1, 3]
    assert got["gini"].tolist() == [1, 2.5, 2.5]  # ties share the average rank
    assert median_rank(means, higher).tolist() == [2, 1, 2.5]


def test_a_metric_under_several_rulers_counts_once_in_the_median_rank():
    # abpc under three rulers ranks the configurations 1, 2, 3; gini and deletion reverse it
    means = pd.DataFrame({"abpc@a": [0.9, 0.5, 0.1], "abpc@b": [0.8, 0.6, 0.2],
                          "abpc@c": [0.7, 0.4, 0.3], "gini": [0.1, 0.5, 0.9],
                          "deletion": [0.9, 0.5, 0.1]})
    higher = {"abpc@a": True, "abpc@b": True, "abpc@c": True, "gini": True, "deletion": False}
    groups = {"abpc@a": "abpc", "abpc@b": "abpc", "abpc@c": "abpc", "gini": "gini",
              "deletion": "deletion"}
    assert median_rank(means, higher).tolist() == [1, 2, 3]  # abpc's three columns outvote
    assert median_rank(means, higher, groups).tolist() == [3, 2, 1]


def test_rank_agreement_is_kendalls_tau_of_the_oriented_means():
    rng = np.random.default_rng(1)
    means = pd.DataFrame(rng.normal(size=(7, 3)), columns=["a", "b", "c"])
    higher = {"a": True, "b": False, "c": True}
    matrix = rank_agreement(means, higher)
    assert matrix.loc["a", "b"] == pytest.approx(stats.kendalltau(means["a"], -means["b"])[0])
    assert matrix.loc["a", "c"] == pytest.approx(stats.kendalltau(means["a"], means["c"])[0])
    assert np.diag(matrix).tolist() == [1, 1, 1]
    # a lower-is-better metric that orders like a higher-is-better one, reversed, agrees fully
    flipped = pd.DataFrame({"a": [1.0, 2, 3], "b": [3.0, 2, 1]})
    assert rank_agreement(flipped, {"a": True, "b": False}).loc["a", "b"] == pytest.approx(1)


def test_friedman_statistic_and_p_value_equal_scipys_with_ties():
    rng = np.random.default_rng(2)
    scores = rng.integers(0, 4, size=(12, 4)).astype(float)  # many ties
    result = friedman(scores, higher_is_better=True)
    expected = stats.friedmanchisquare(*scores.T)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.blocks == 12


def test_friedman_average_ranks_put_the_best_first_and_drop_incomplete_blocks():
    scores = np.array([[0.9, 0.5, 0.1], [0.8, 0.6, 0.2], [0.7, np.nan, 0.3], [0.1, 0.5, 0.9]])
    result = friedman(scores, higher_is_better=True)
    assert result.blocks == 3
    assert result.average_ranks.tolist() == pytest.approx([5 / 3, 2, 7 / 3])
    lower = friedman(scores, higher_is_better=False)
    assert lower.average_ranks.tolist() == pytest.approx([7 / 3, 2, 5 / 3])


def test_friedman_needs_three_configurations_and_two_blocks():
    assert friedman(np.ones((5, 2)), True) is None
    assert friedman(np.ones((1, 4)), True) is None
    assert friedman(np.ones((5, 4)), True) is None  # every block ties: nothing to test


def test_nemenyi_q_matches_demsars_table_and_the_critical_difference_its_formula():
    # Demšar (2006), table 5(a), alpha = 0.05
    for k, q in {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 10: 3.164}.items():
        assert nemenyi_q(k) == pytest.approx(q, abs=1e-3)
    # k = 3, N = 10 by hand: 2.343 * sqrt(3 * 4 / 60) = 1.0478
    assert critical_difference(3, 10) == pytest.approx(2.343 * np.sqrt(12 / 60), abs=1e-3)
    assert critical_difference(3, 10) == pytest.approx(1.0478, abs=1e-3)
    with pytest.raises(XaibenchError, match="at least 2"):
        nemenyi_q(1)


def test_groups_join_configurations_closer_than_the_critical_difference():
    result = Friedman(np.array([2.8, 1.0, 3.0, 1.5]), 10, 0.0, 1.0, 1.6, 0.05)
    # by rank 1.0, 1.5, 2.8, 3.0: maximal runs spanning less than 1.6 (indices as given)
    assert result.groups() == [(1, 3), (3, 0, 2)]
    assert Friedman(np.array([1.0, 2.0, 3.0]), 10, 0.0, 1.0, 0.5, 0.05).groups() == []


def test_seed_std_is_the_across_seed_standard_deviation_per_configuration():
    per_seed = pd.DataFrame({"explainer": ["p", "p", "p", "d"], "seed": [0, 1, 2, 0],
                             "abpc": [0.1, 0.2, 0.6, 0.5]})
    table = seed_std(per_seed, ["explainer"], "seed", ["abpc"])
    assert table["explainer"].tolist() == ["p"]  # one seed: no spread to report
    assert table["seeds"].tolist() == [3]
    assert table["abpc_seed_std"].iloc[0] == pytest.approx(np.std([0.1, 0.2, 0.6], ddof=1))


def test_beats_needs_a_majority_of_shared_metrics():
    higher = {"abpc": True, "deletion": False, "gini": True}
    baseline = pd.Series({"abpc": 0.2, "deletion": 0.3, "gini": 0.5})
    assert beats(pd.Series({"abpc": 0.3, "deletion": 0.2, "gini": 0.1}), baseline, higher)
    assert not beats(pd.Series({"abpc": 0.3, "deletion": 0.4, "gini": 0.1}), baseline, higher)
    assert not beats(pd.Series({"abpc": 0.2, "deletion": 0.3, "gini": 0.5}), baseline, higher)
    assert beats(pd.Series({"abpc": 0.3, "deletion": np.nan, "gini": np.nan}), baseline, higher)
