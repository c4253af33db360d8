"""The dataset record every loader returns, and the description validation reads instead.

Every dataset module registered in :data:`xaibench.registry.datasets` has, next to its
``load(**params)``, a ``describe(**params)`` with the same parameters that checks them and
returns a :class:`DatasetInfo` without reading any image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xaibench.backend import ImageSpec
from xaibench.errors import ConfigError, DataError, XaibenchError


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

    def __post_init__(self) -> None:
        """Raise :class:`DataError` naming the split unless the images are NHWC, finite and in
        [0, 1] (:meth:`ImageSpec.check`) and the labels are integers naming a class."""
        if np.ndim(self.x_train) != 4:
            raise DataError(f"dataset '{self.name}': x_train must be images (N, H, W, C); got "
                            f"shape {np.shape(self.x_train)}")
        n_classes = len(self.class_names)
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), np.asarray(getattr(self, f"y_{split}"))
            try:
                self.spec.check(x)
            except XaibenchError as exc:
                raise DataError(f"dataset '{self.name}', x_{split}: {exc}") from None
            if (y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer)
                    or (y.size and not 0 <= y.min() <= y.max() < n_classes)):
                raise DataError(f"dataset '{self.name}': y_{split} must hold {len(x)} integer "
                                f"labels in 0..{n_classes - 1}; got {y.dtype} of shape "
                                f"{y.shape}" + (f" in {y.min()}..{y.max()}" if y.size else ""))

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


def check_count(dataset: str, name: str, n: int | None, available: int) -> int:
    """``n`` (an image count parameter of ``dataset``) as int, ``available`` when None;
    ConfigError unless it is an integer in 0..available."""
    if n is None:
        return available
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= available:
        raise ConfigError(f"{dataset}: {name} must be an integer in 0..{available}, got {n!r}")
    return int(n)
