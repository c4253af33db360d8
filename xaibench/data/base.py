"""The dataset record every loader returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xaibench.backend import ImageSpec


@dataclass(frozen=True)
class Dataset:
    """Images as NHWC float32 in [0, 1], integer labels, class names.

    ``masks_train`` / ``masks_test`` hold ground-truth relevance masks (N, H, W) bool when the
    dataset has them (``synthetic``), else None.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    masks_train: np.ndarray | None = None
    masks_test: np.ndarray | None = None

    @property
    def spec(self) -> ImageSpec:
        h, w, c = self.x_train.shape[1:]
        return ImageSpec(shape=(int(h), int(w), int(c)), class_names=self.class_names)
