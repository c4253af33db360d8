"""Localisation metrics on the synthetic dataset's ground-truth glyph masks."""

from __future__ import annotations

import numpy as np
import pytest

from xaibench.backend import Attribution
from xaibench.data.synthetic import load
from xaibench.errors import XaibenchError
from xaibench.metrics import (PointingGame, RelevanceMass, RelevanceRank, pointing_game,
                              relevance_mass, relevance_rank)

SCORES = (relevance_mass, relevance_rank, pointing_game)


@pytest.fixture(scope="module")
def masks() -> np.ndarray:
    return load(n_train=0, n_test=400, size=12, seed=0).masks_test


def as_values(maps: np.ndarray, channels: int = 1) -> np.ndarray:
    """(N, H, W) or (N, H, W, K) maps -> values (N, H, W, C, K), split evenly over channels."""
    maps = maps[..., None] if maps.ndim == 3 else maps
    return np.repeat(maps[:, :, :, None, :] / channels, channels, axis=3).astype(np.float64)


@pytest.mark.parametrize("score", SCORES)
def test_the_mask_itself_scores_one_and_its_complement_zero(masks, score):
    np.testing.assert_allclose(score(as_values(masks, channels=3), masks), 1.0)
    np.testing.assert_allclose(score(as_values(~masks), masks), 0.0)


@pytest.mark.parametrize("score", SCORES)
def test_random_attributions_score_about_the_mask_fraction(masks, score):
    rng = np.random.default_rng(0)
    values = rng.standard_normal((*masks.shape, 2, 3))  # C = 2, K = 3
    fraction = masks.mean()
    result = score(values, masks)
    assert result.shape == (len(masks), 3)
    tolerance = 0.03 if score is pointing_game else 0.01
    assert abs(result.mean() - fraction) < tolerance, (result.mean(), fraction)


def test_scores_by_hand():
    mask = np.zeros((1, 2, 3), bool)
    mask[0, 0, :2] = True  # pixels 0 and 1
    relevance = np.array([[3.0, -1.0, 0.0], [2.0, 2.0, 1.0]])[None]  # pixel order 0..5
    values = as_values(relevance)
    np.testing.assert_allclose(relevance_mass(values, mask), [[3 / 8]])
    np.testing.assert_allclose(relevance_rank(values, mask), [[1 / 2]])  # top-2: pixels 0, 3
    np.testing.assert_allclose(pointing_game(values, mask), [[1.0]])
    tied = as_values(np.array([[2.0, 0.0, 0.0], [2.0, 2.0, 0.0]])[None])
    np.testing.assert_allclose(pointing_game(tied, mask), [[1 / 3]])
    np.testing.assert_allclose(relevance_mass(as_values(-np.ones((1, 2, 3))), mask), np.nan)
    empty = np.zeros_like(mask)
    for score in SCORES:
        assert np.isnan(score(values, empty)).all()


def test_metrics_need_masks_of_the_right_shape(masks):
    values = as_values(masks[:2])
    attribution = Attribution("test", values, np.zeros((2, 1), np.int64), np.zeros((2, 1)),
                              np.zeros((2, 1)), 0.0, 0)
    for metric in (RelevanceMass(), RelevanceRank(), PointingGame()):
        assert "masks" in metric.consumes and metric.higher_is_better
        np.testing.assert_allclose(metric(None, None, attribution, masks=masks[:2]), 1.0)
        with pytest.raises(XaibenchError, match="masks"):
            metric(None, None, attribution)
        with pytest.raises(XaibenchError, match="masks"):
            metric(None, None, attribution, masks=masks[:3])
