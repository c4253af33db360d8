"""Gini sparseness and entropy of |r| against hand-computed values."""

from __future__ import annotations

import numpy as np

from xaibench.backend import Attribution
from xaibench.metrics import Entropy, Gini, entropy, gini


def values_of(pixels: np.ndarray) -> np.ndarray:
    """(K, P) pixel maps -> values (1, 1, P, 1, K)."""
    return np.asarray(pixels, np.float64).T[None, None, :, None, :]


def test_one_hot_is_maximal_and_uniform_minimal():
    p = 50
    one_hot = np.zeros(p)
    one_hot[17] = -4.0  # magnitudes: the sign does not matter
    maps = np.stack([one_hot, np.full(p, 0.3), np.random.default_rng(0).normal(size=p)])
    g, h = gini(values_of(maps))[0], entropy(values_of(maps))[0]
    np.testing.assert_allclose(g[:2], [(p - 1) / p, 0.0], atol=1e-12)
    np.testing.assert_allclose(h[:2], [0.0, np.log(p)], atol=1e-12)
    assert 0 < g[2] < (p - 1) / p and 0 < h[2] < np.log(p)


def test_by_hand_and_channels_summed():
    # pixels |r| = [0, 0, 1, 3]: Gini = ((2·3−5)·1 + (2·4−5)·3) / (4·4) = 10/16
    values = np.zeros((1, 1, 4, 2, 1))
    values[0, 0, 2] = [[2.0], [-1.0]]  # channels sum to 1
    values[0, 0, 3] = [[-1.0], [-2.0]]  # channels sum to -3
    np.testing.assert_allclose(gini(values), [[10 / 16]])
    np.testing.assert_allclose(entropy(values), [[-(0.25 * np.log(0.25) + 0.75 * np.log(0.75))]])
    assert np.isnan(gini(np.zeros((1, 1, 4, 2, 1)))).all()
    assert np.isnan(entropy(np.zeros((1, 1, 4, 2, 1)))).all()


def test_metric_classes():
    values = values_of(np.eye(3))  # K = 3 one-hot maps
    attribution = Attribution("test", values, np.zeros((1, 3), np.int64), np.zeros((1, 3)),
                              np.zeros((1, 3)), 0.0, 0)
    np.testing.assert_allclose(Gini()(None, None, attribution), [[2 / 3] * 3])
    np.testing.assert_allclose(Entropy()(None, None, attribution), [[0.0] * 3], atol=1e-12)
    assert Gini.higher_is_better and not Entropy.higher_is_better
