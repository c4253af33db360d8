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
