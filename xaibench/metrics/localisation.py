"""Localisation against ground-truth relevance masks (N, H, W) bool (the synthetic dataset).

All scores read the pixel relevance r = Σ_c φ and lie in [0, 1] (higher is better); a random
attribution scores about the mask's area fraction. An image with an empty mask scores NaN.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np

from xaibench.backend import Attribution, Backend
from xaibench.errors import XaibenchError
from xaibench.metrics._ranking import descending_positions, pixel_relevance
from xaibench.metrics.base import Metric


def _relevance_and_masks(values: np.ndarray,
                         masks: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Pixel relevance (N, K, P) and masks (N, 1, P), checked against each other."""
    values = np.asarray(values)
    if masks is None:
        raise XaibenchError("localisation metrics need ground-truth masks (masks=(N, H, W))")
    masks = np.asarray(masks)
    if masks.dtype != bool or masks.shape != values.shape[:3]:
        raise XaibenchError(f"masks must be bool of shape {values.shape[:3]}; "
                            f"got {masks.dtype} {masks.shape}")
    return pixel_relevance(values), masks.reshape(len(masks), 1, -1)


def _nan_if_empty(score: np.ndarray, masks: np.ndarray) -> np.ndarray:
    return np.where(masks.any(axis=-1), score, np.nan)


def relevance_mass(values: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Share of the positive relevance inside the mask, Σ_mask r⁺ / Σ r⁺ (Arras et al.);
    NaN where no pixel has positive relevance."""
    r, m = _relevance_and_masks(values, masks)
    positive = np.maximum(r, 0.0)
    total = positive.sum(axis=-1)
    inside = (positive * m).sum(axis=-1)
    return _nan_if_empty(np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan), m)


def relevance_rank(values: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Share of the |mask| highest-relevance pixels that lie inside the mask (Arras et al.)."""
    r, m = _relevance_and_masks(values, masks)
    size = m.sum(axis=-1, keepdims=True)
    top = descending_positions(r) < size
    return _nan_if_empty((top & m).sum(axis=-1) / np.maximum(size[..., 0], 1), m)


def pointing_game(values: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """1 when the maximum-relevance pixel is inside the mask, else 0 (Zhang et al.); with tied
    maxima, the share of them inside the mask."""
    r, m = _relevance_and_masks(values, masks)
    at_max = r == r.max(axis=-1, keepdims=True)
    return _nan_if_empty((at_max & m).sum(axis=-1) / at_max.sum(axis=-1), m)


class _LocalisationMetric(Metric):
    """A per-cell metric around one of the score functions above."""

    higher_is_better = True
    category = "localisation"
    consumes = frozenset({"masks"})
    score: ClassVar[Callable[[np.ndarray, np.ndarray], np.ndarray]]

    def __call__(self, backend: Backend, x: np.ndarray, attribution: Attribution, *,
                 masker: Any = None, masks: np.ndarray | None = None) -> np.ndarray:
        return self.score(attribution.values, masks)


class RelevanceMass(_LocalisationMetric):
    """Relevance mass accuracy: positive relevance inside the ground truth / all of it."""

    name = "relevance_mass"
    score = staticmethod(relevance_mass)


class RelevanceRank(_LocalisationMetric):
    """Relevance rank accuracy: top-|mask| pixels inside the ground truth / |mask|."""

    name = "relevance_rank"
    score = staticmethod(relevance_rank)


class PointingGame(_LocalisationMetric):
    """Pointing game: is the most relevant pixel inside the ground truth."""

    name = "pointing_game"
    score = staticmethod(pointing_game)
