"""Cost of an explanation, read from the attribution record (no model calls)."""

from __future__ import annotations

from typing import Any

import numpy as np

from xaibench.backend import Attribution, Backend
from xaibench.metrics.base import Metric


def _per_image(total: float, attribution: Attribution) -> np.ndarray:
    """``total`` / N, the same for every image and output (N, K)."""
    return np.full(attribution.output_indices.shape, total / max(attribution.n_images, 1))


class SecondsPerImage(Metric):
    """Wall-clock seconds of the explanation per image; lower is better."""

    name = "seconds_per_image"
    higher_is_better = False
    category = "cost"

    def __call__(self, backend: Backend, x: np.ndarray, attribution: Attribution, *,
                 masker: Any = None, masks: np.ndarray | None = None) -> np.ndarray:
        return _per_image(attribution.wall_seconds, attribution)


class EvalsPerImage(Metric):
    """Model evaluations (images through the model) of the explanation per image."""

    name = "evals_per_image"
    higher_is_better = False
    category = "cost"

    def __call__(self, backend: Backend, x: np.ndarray, attribution: Attribution, *,
                 masker: Any = None, masks: np.ndarray | None = None) -> np.ndarray:
        return _per_image(float(attribution.model_evals), attribution)
