"""Baseline explainers: reference points for metrics, not explanations."""

from __future__ import annotations

import numpy as np

from xaibench.backend import Backend
from xaibench.explain._shap_common import check_output_indices


def random(backend: Backend, x: np.ndarray, output_indices: np.ndarray, *,
           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal noise attributions — the floor any real explainer should beat.

    ``values[n, h, w, c, k]`` are i.i.d. N(0, 1), drawn from ``seed`` (same seed, same noise).
    ``base_values`` are the model's scores for ``x`` itself (one ``backend.predict`` per image):
    noise explains nothing, so the honest reference is "no change". The values are *not*
    additive — Σφ does not equal f(x) − base — so the additivity metric is meaningless for
    this baseline (the conformance suite marks it non-additive); use it as the floor for the
    fidelity, localisation and robustness metrics.
    """
    idx = check_output_indices(x, output_indices)
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((*x.shape, idx.shape[1]))
    scores = backend.predict(x)
    base_values = np.take_along_axis(scores, idx, axis=1).astype(np.float64)
    return values, base_values


def edge(backend: Backend, x: np.ndarray,
         output_indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel edge magnitude of the image itself — no model at all, the same for every output.

    ``values[n, h, w, c, k]`` = sqrt(Gx² + Gy²) of channel c of image n, with Gx, Gy the 3×3
    Sobel responses ([1, 2, 1] smoothing ⊗ [−1, 0, 1] difference; borders replicate the edge
    pixel), so the pixel relevance r = Σ_c φ is the
    channel-summed edge magnitude. An explainer that does not beat this map only finds edges.
    ``base_values`` are the model's scores for ``x`` (one ``backend.predict``), as for
    :func:`random`; the values are not additive.
    """
    idx = check_output_indices(x, output_indices)
    image = np.asarray(x, dtype=np.float64)
    magnitude = np.hypot(_sobel(image, axis=1), _sobel(image, axis=2))
    values = np.repeat(magnitude[..., None], idx.shape[1], axis=-1)
    scores = backend.predict(x)
    base_values = np.take_along_axis(scores, idx, axis=1).astype(np.float64)
    return values, base_values


def _sobel(images: np.ndarray, axis: int) -> np.ndarray:
    """Sobel derivative of (N, H, W, C) images along ``axis`` (1 or 2), smoothed along the other
    spatial axis only (``scipy.ndimage.sobel`` would also smooth across images and channels)."""
    from scipy.ndimage import correlate1d

    derivative = correlate1d(images, [-1.0, 0.0, 1.0], axis=axis, mode="nearest")
    return correlate1d(derivative, [1.0, 2.0, 1.0], axis=3 - axis, mode="nearest")
