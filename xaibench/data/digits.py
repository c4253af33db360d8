"""scikit-learn's bundled 8x8 handwritten digits (1797 images, values 0..16, 10 classes)."""

from __future__ import annotations

import functools

import numpy as np

from xaibench.data.base import Dataset
from xaibench.errors import ConfigError

NAME = "digits"
CLASS_NAMES = tuple(str(d) for d in range(10))


def load(*, test_fraction: float = 0.25, seed: int = 0, n_train: int | None = None,
         n_test: int | None = None) -> Dataset:
    """The digits as (N, 8, 8, 1) float32 in [0, 1] (pixel / 16), int64 labels 0..9.

    The split is stratified and seeded (``sklearn.model_selection.train_test_split`` with
    ``random_state=seed``): the same seed gives the same split. ``n_train`` / ``n_test`` then
    keep the first n images of each (shuffled) split; None keeps all.
    """
    if (isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float))
            or not 0.0 < test_fraction < 1.0):
        raise ConfigError(f"digits: test_fraction must be in (0, 1), got {test_fraction!r}")
    from sklearn.model_selection import train_test_split

    images, labels = _raw()
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=float(test_fraction), random_state=int(seed), stratify=labels)
    n_train = _check_count("n_train", n_train, len(y_train))
    n_test = _check_count("n_test", n_test, len(y_test))
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


def _check_count(name: str, n: int | None, available: int) -> int:
    if n is None:
        return available
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= available:
        raise ConfigError(f"digits: {name} must be an integer in 0..{available}, got {n!r}")
    return int(n)
