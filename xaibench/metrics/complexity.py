"""Complexity of an attribution map: Gini sparseness and entropy of |r| (r = Σ_c φ per pixel).

An all-zero map has no distribution of relevance; both scores are NaN for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xaibench.backend import Attribution, Backend
from xaibench.metrics._ranking import pixel_relevance
from xaibench.metrics.base import Metric


def gini(values: np.ndarray) -> np.ndarray:
    """Gini index of |r| per image and output (N, K): 0 = uniform, (P − 1)/P = one pixel.

    G = Σ_i (2i − P − 1) a_(i) / (P Σ a) with a_(1) ≤ … ≤ a_(P) the sorted magnitudes.
    """
    a = np.sort(np.abs(pixel_relevance(values)), axis=-1)
    size = a.shape[-1]
    total = a.sum(axis=-1)
    weights = 2.0 * np.arange(1, size + 1) - size - 1
    return np.where(total > 0, (a @ weights) / (size * np.where(total > 0, total, 1.0)), np.nan)


def entropy(values: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of p = |r| / Σ|r| per image and output (N, K): 0 = one pixel,
    log P = uniform."""
    a = np.abs(pixel_relevance(values))
    total = a.sum(axis=-1, keepdims=True)
    p = a / np.where(total > 0, total, 1.0)
    plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.where(total[..., 0] > 0, -plogp.sum(axis=-1), np.nan)


class Gini(Metric):
    """Gini sparseness of |r|; higher = relevance concentrated on fewer pixels."""

    name = "gini"
    higher_is_better = True
    category = "complexity"

    def __call__(self, backend: Backend, x: np.ndarray, attribution: Attribution, *,
                 masker: Any = None, masks: np.ndarray | None = None) -> np.ndarray:
        return gini(attribution.values)


class Entropy(Metric):
    """Entropy of the normalised |r|; lower = a simpler explanation."""

    name = "entropy"
    higher_is_better = False
    category = "complexity"

    def __call__(self, backend: Backend, x: np.ndarray, attribution: Attribution, *,
                 masker: Any = None, masks: np.ndarray | None = None) -> np.ndarray:
        return entropy(attribution.values)
