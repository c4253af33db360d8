"""Pixel relevance, rankings and rank statistics shared by the metrics (numpy, batched).

Every metric reads an attribution the same way: the relevance of a *pixel* is the sum of its
channel attributions, ``r = Σ_c φ[..., c]``, and magnitude-based metrics use ``|r|``. Rankings
are most-relevant-first with ties broken in raster (row-major) pixel order; values equal up to
``TIE_RTOL`` of the row's largest magnitude count as ties, so that attributions which agree to
float round-off (the same model in two frameworks) give the same ranking.
"""

from __future__ import annotations

import numpy as np

from xaibench.backend import Attribution
from xaibench.errors import XaibenchError

#: relative tolerance (of a row's max |value|) under which two values rank as a tie
TIE_RTOL = 1e-6


def pixel_relevance(values: np.ndarray) -> np.ndarray:
    """Attribution values (N, H, W, C, K) -> pixel relevance (N, K, H·W), channels summed."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 5:
        raise XaibenchError(f"attribution values must be (N, H, W, C, K), got {values.shape}")
    n, h, w, _, k = values.shape
    return np.moveaxis(values.sum(axis=3), -1, 1).reshape(n, k, h * w)


def check_images_match(x: np.ndarray, attribution: Attribution) -> None:
    """Raise unless ``attribution`` explains a batch shaped like ``x`` (N, H, W, C)."""
    if attribution.values.shape[:4] != x.shape:
        raise XaibenchError(f"attribution values {attribution.values.shape} do not explain "
                            f"images of shape {x.shape}")


def descending_positions(relevance: np.ndarray) -> np.ndarray:
    """Position of every entry in its row's most-relevant-first order (0 = most relevant)."""
    relevance = np.asarray(relevance, dtype=np.float64)
    scale = TIE_RTOL * np.abs(relevance).max(axis=-1, keepdims=True)
    snapped = np.round(relevance / np.where(scale > 0, scale, 1.0))
    order = np.argsort(-snapped, axis=-1, kind="stable")
    positions = np.empty_like(order)
    ranks = np.broadcast_to(np.arange(relevance.shape[-1]), order.shape)
    np.put_along_axis(positions, order, ranks, axis=-1)
    return positions


def top_fraction(relevance: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the ``ceil(fraction · P)`` (at least one) most relevant of P entries."""
    if not 0.0 < fraction <= 1.0:
        raise XaibenchError(f"fraction must be in (0, 1], got {fraction!r}")
    size = relevance.shape[-1]
    return descending_positions(relevance) < max(1, int(np.ceil(fraction * size)))


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation along the last axis (average ranks for ties).

    Conventions where Pearson's formula is undefined: two constant rows have identical
    rankings (1.0); a constant row against a varying one has no rank association (0.0).
    """
    from scipy.stats import rankdata

    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    ra = rankdata(a, axis=-1)
    rb = rankdata(b, axis=-1)
    ra -= ra.mean(axis=-1, keepdims=True)
    rb -= rb.mean(axis=-1, keepdims=True)
    va, vb = (ra * ra).sum(axis=-1), (rb * rb).sum(axis=-1)
    varying = (va > 0) & (vb > 0)
    rho = (ra * rb).sum(axis=-1) / np.sqrt(np.where(varying, va * vb, 1.0))
    return np.where(varying, np.clip(rho, -1.0, 1.0), np.where((va == 0) & (vb == 0), 1.0, 0.0))
