"""Additivity gap (local accuracy)."""

from __future__ import annotations

import numpy as np

from xaibench.backend import Attribution, Backend
from xaibench.metrics.base import Metric
from xaibench.registry import explainers


class AdditivityGap(Metric):
    """|Σφ − (f(x) − base)| on the explained output columns (top-k aware); NaN (not
    applicable) for explainers registered as not additive (class activation maps, random)."""

    name = "additivity"
    higher_is_better = False
    category = "correctness"

    def __call__(self, backend: Backend, x: np.ndarray, attribution: Attribution, *,
                 masker: str | None = None, masks: np.ndarray | None = None) -> np.ndarray:
        if attribution.method in explainers and not explainers.entry(attribution.method).additive:
            return np.full(attribution.output_indices.shape, np.nan)
        return attribution.additivity_gap()
