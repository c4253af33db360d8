"""Agreement between two attributions of the same images and outputs (for reports, parity runs).

Not per-cell metrics: each function compares two attribution arrays (N, H, W, C, K) — or
:class:`~xaibench.backend.Attribution` records, whose output indices must then match — on the
pixel relevance r = Σ_c φ and returns (N, K) scores in which 1 means full agreement.
"""

from __future__ import annotations

from typing import Callable, Mapping, Union

import numpy as np

from xaibench.backend import Attribution
from xaibench.errors import ConfigError, XaibenchError
from xaibench.metrics._ranking import pixel_relevance, spearman, top_fraction

AttributionLike = Union[Attribution, np.ndarray]


def _pair(a: AttributionLike, b: AttributionLike) -> tuple[np.ndarray, np.ndarray]:
    """Pixel relevance (N, K, P) of both, after checking that they explain the same thing."""
    if isinstance(a, Attribution) and isinstance(b, Attribution) \
            and not np.array_equal(a.output_indices, b.output_indices):
        raise XaibenchError("the two attributions explain different outputs")
    va = a.values if isinstance(a, Attribution) else np.asarray(a)
    vb = b.values if isinstance(b, Attribution) else np.asarray(b)
    if va.shape != vb.shape:
        raise XaibenchError(f"attributions of different shapes: {va.shape} vs {vb.shape}")
    return pixel_relevance(va), pixel_relevance(vb)


def spearman_agreement(a: AttributionLike, b: AttributionLike, *,
                       absolute: bool = False) -> np.ndarray:
    """Spearman rank correlation of r (|r| with ``absolute``) per image and output, in [−1, 1]."""
    ra, rb = _pair(a, b)
    if absolute:
        ra, rb = np.abs(ra), np.abs(rb)
    return spearman(ra, rb)


def topk_iou(a: AttributionLike, b: AttributionLike, *, fraction: float = 0.1) -> np.ndarray:
    """Intersection over union of the top ``fraction`` of pixels by |r| (ceil, at least one)."""
    ra, rb = _pair(a, b)
    top_a, top_b = top_fraction(np.abs(ra), fraction), top_fraction(np.abs(rb), fraction)
    return (top_a & top_b).sum(axis=-1) / (top_a | top_b).sum(axis=-1)


MEASURES: dict[str, Callable[..., np.ndarray]] = {"spearman": spearman_agreement,
                                                   "iou": topk_iou}


def agreement_matrix(attributions: Mapping[str, AttributionLike], measure: str = "spearman",
                     **kwargs: float | bool) -> tuple[list[str], np.ndarray]:
    """Names and the (M, M) matrix of mean pairwise agreement (NaN-aware mean over images and
    outputs) of M attributions; ``kwargs`` go to the measure ("spearman" or "iou")."""
    if measure not in MEASURES:
        raise ConfigError(f"unknown agreement measure {measure!r} (known: {', '.join(MEASURES)})")
    names = list(attributions)
    matrix = np.ones((len(names), len(names)))
    for i, first in enumerate(names):
        for j in range(i + 1, len(names)):
            score = MEASURES[measure](attributions[first], attributions[names[j]], **kwargs)
            matrix[i, j] = matrix[j, i] = np.nanmean(score)
    return names, matrix
