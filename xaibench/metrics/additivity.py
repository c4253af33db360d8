"""Additivity gap (local accuracy)."""

from __future__ import annotations

import numpy as np

from xaibench.backend import Attribution, Backend
from xaibench.metrics.base import Metric


class AdditivityGap(Metric):
    """|Σφ − (f(x) − base)| on the explained output columns (top-k aware)."""

    name = "additivity"
    higher_is_better = False
    category = "correctness"

    def __call__(self, backend: Backend, x: np.ndarray, attribution: Attribution, *,
                 masker: str | None = None, masks: np.ndarray | None = None) -> np.ndarray:
        return attribution.additivity_gap()
