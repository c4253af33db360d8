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
    """Images as NHWC float32 in ``value_range`` ([0, 1] by default), labels, class names.

    ``masks_train`` / ``masks_test`` hold ground-truth relevance masks (N, H, W) bool when the
    dataset has them (``synthetic``), else None.

    Tabular data (:attr:`ImageSpec.is_tabular`) travels as rows of shape (1, F, 1) named by
    ``feature_names``. A ``classification`` dataset has integer labels naming a class; a
    ``regression`` dataset has float32 targets and one class name, the target's;
    ``target_scale`` = (mean, std) then maps a (standardised) target back to its original
    units, ``y * std + mean`` (None: the targets are in their original units).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    masks_train: np.ndarray | None = None
    masks_test: np.ndarray | None = None
    value_range: tuple[float, float] = (0.0, 1.0)
    feature_names: tuple[str, ...] | None = None
    task: str = "classification"
    target_scale: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        """Raise :class:`DataError` naming the split unless the images are NHWC, finite and in
        the value range (:meth:`ImageSpec.check`) and the labels fit the task
        (:func:`check_labels`)."""
        if np.ndim(self.x_train) != 4:
            raise DataError(f"dataset '{self.name}': x_train must be images (N, H, W, C); got "
                            f"shape {np.shape(self.x_train)}")
        try:
            spec = self.spec
        except XaibenchError as exc:
            raise DataError(f"dataset '{self.name}': {exc}") from None
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            try:
                spec.check(x)
            except XaibenchError as exc:
                raise DataError(f"dataset '{self.name}', x_{split}: {exc}") from None
            try:
                check_labels(y, len(x), spec, f"y_{split}")
            except XaibenchError as exc:
                raise DataError(f"dataset '{self.name}': {exc}") from None

    @property
    def spec(self) -> ImageSpec:
        h, w, c = self.x_train.shape[1:]
        return ImageSpec(shape=(int(h), int(w), int(c)), class_names=self.class_names,
                         value_range=self.value_range, feature_names=self.feature_names,
                         task=self.task)


def check_labels(y: np.ndarray, n: int, spec: ImageSpec, what: str = "labels") -> np.ndarray:
    """``y`` (called ``what`` in errors) as an array if it holds ``n`` labels that fit
    ``spec``'s task: integer class indices for classification, finite float32 targets for
    regression; else XaibenchError."""
    y = np.asarray(y)
    if spec.task == "regression":
        if y.shape != (n,) or y.dtype != np.float32 or not np.isfinite(y).all():
            raise XaibenchError(f"{what} must hold {n} finite float32 regression targets; got "
                                f"{y.dtype} of shape {y.shape}: convert them with "
                                f"np.asarray(y, np.float32) and drop rows with NaN/Inf targets")
        return y
    n_classes = spec.n_classes
    if (y.shape != (n,) or not np.issubdtype(y.dtype, np.integer)
            or (y.size and not 0 <= y.min() <= y.max() < n_classes)):
        raise XaibenchError(f"{what} must hold {n} integer labels in 0..{n_classes - 1}; got "
                            f"{y.dtype} of shape {y.shape}"
                            + (f" in {y.min()}..{y.max()}" if y.size else "")
                            + (" (float targets: declare task='regression')"
                               if np.issubdtype(y.dtype, np.floating) else ""))
    return y


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
    #: tabular datasets: the names of the F features of their (1, F, 1) rows (None: images)
    feature_names: tuple[str, ...] | None = None
    #: "classification" or "regression" (:data:`xaibench.backend.TASKS`)
    task: str = "classification"

    @property
    def is_tabular(self) -> bool:
        return self.feature_names is not None


def check_count(dataset: str, name: str, n: int | None, available: int) -> int:
    """``n`` (an image count parameter of ``dataset``) as int, ``available`` when None;
    ConfigError unless it is an integer in 0..available."""
    if n is None:
        return available
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= available:
        raise ConfigError(f"{dataset}: {name} must be an integer in 0..{available}, got {n!r}")
    return int(n)
