"""scikit-learn's bundled 8x8 handwritten digits (1797 images, values 0..16, 10 classes)."""

from __future__ import annotations

import functools
import math

import numpy as np

from xaibench.data.base import Dataset, DatasetInfo, check_count
from xaibench.errors import ConfigError

NAME = "digits"
CLASS_NAMES = tuple(str(d) for d in range(10))
#: images in scikit-learn's bundled copy, and their shape
N_IMAGES = 1797
SHAPE = (8, 8, 1)


def load(*, test_fraction: float = 0.25, seed: int = 0, n_train: int | None = None,
         n_test: int | None = None) -> Dataset:
    """The digits as (N, 8, 8, 1) float32 in [0, 1] (pixel / 16), int64 labels 0..9.

    The split is stratified and seeded (``sklearn.model_selection.train_test_split`` with
    ``random_state=seed``): the same seed gives the same split. ``n_train`` / ``n_test`` then
    keep the first n images of each (shuffled) split; None keeps all.
    """
    _split_sizes(test_fraction)
    from sklearn.model_selection import train_test_split

    images, labels = _raw()
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=float(test_fraction), random_state=int(seed), stratify=labels)
    n_train = check_count("digits", "n_train", n_train, len(y_train))
    n_test = check_count("digits", "n_test", n_test, len(y_test))
    return Dataset(
        name=NAME,
        x_train=np.ascontiguousarray(x_train[:n_train]),
        y_train=np.ascontiguousarray(y_train[:n_train]),
        x_test=np.ascontiguousarray(x_test[:n_test]),
        y_test=np.ascontiguousarray(y_test[:n_test]),
        class_names=CLASS_NAMES,
    )


@functools.lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (np.asarray(bunch.images, dtype=np.float32) / np.float32(16))[..., None]
    labels = np.asarray(bunch.target, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels



def describe(*, test_fraction: float = 0.25, seed: int = 0, n_train: int | None = None,
             n_test: int | None = None) -> DatasetInfo:
    """What :func:`load` with these parameters returns, checked without loading anything."""
    available_train, available_test = _split_sizes(test_fraction)
    return DatasetInfo(shape=SHAPE, n_classes=len(CLASS_NAMES),
                       n_train=check_count("digits", "n_train", n_train, available_train),
                       n_test=check_count("digits", "n_test", n_test, available_test))


def _split_sizes(test_fraction: float) -> tuple[int, int]:
    """(train, test) sizes of the stratified split, computed as scikit-learn does; each split
    must hold every class at least once."""
    if (isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float))
            or not 0.0 < test_fraction < 1.0):
        raise ConfigError(f"digits: test_fraction must be in (0, 1), got {test_fraction!r}")
    n_test = math.ceil(test_fraction * N_IMAGES)
    n_classes = len(CLASS_NAMES)
    if min(n_test, N_IMAGES - n_test) < n_classes:
        raise ConfigError(f"digits: test_fraction = {test_fraction} leaves a split with fewer "
                          f"images than the {n_classes} classes; use a test_fraction in "
                          f"[{n_classes / N_IMAGES:.3f}, {1 - n_classes / N_IMAGES:.3f}]")
    return N_IMAGES - n_test, n_test
