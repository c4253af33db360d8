"""The dataset record every loader returns, and the description validation reads instead.

Every dataset module registered in :data:`xaibench.registry.datasets` has, next to its
``load(**params)``, a ``describe(**params)`` with the same parameters that checks them and
returns a :class:`DatasetInfo` without reading any image.
"""

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


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset will hold, known from its parameters alone (no image is read)."""

    #: image shape (H, W, C)
    shape: tuple[int, int, int]
    n_classes: int
    #: whether it has ground-truth relevance masks
    has_masks: bool = False
    #: images in the training / test split (None: not known without reading the files)
    n_train: int | None = None
    n_test: int | None = None
