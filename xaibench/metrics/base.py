"""The metric interface: class-level metadata, numpy in, numpy out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from xaibench.backend import Attribution, Backend


class Metric(ABC):
    """A score per image and explained output, shape (N, K), with its direction of "better"."""

    name: ClassVar[str]
    higher_is_better: ClassVar[bool]
    category: ClassVar[str]
    #: True when the metric needs ground-truth relevance masks (synthetic data)
    needs_masks: ClassVar[bool] = False

    @abstractmethod
    def __call__(self, backend: Backend, x: np.ndarray, attribution: Attribution, *,
                 masker: str | None = None, masks: np.ndarray | None = None) -> np.ndarray:
        """Scores (N, K) for the images ``x`` explained by ``attribution``."""
