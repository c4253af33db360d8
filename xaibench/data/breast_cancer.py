"""scikit-learn's bundled Wisconsin breast-cancer table (569 tumours, 30 features; malignant or
benign), rows as (1, 30, 1) images.

Features are standardised with the training split's statistics (:mod:`xaibench.data._tabular`).
"""

from __future__ import annotations

import functools

import numpy as np

from xaibench.data import _tabular
from xaibench.data.base import Dataset, DatasetInfo

NAME = "breast_cancer"
#: label 0 is malignant, 1 benign (scikit-learn's coding)
CLASS_NAMES = ("malignant", "benign")
N_ROWS = 569
#: scikit-learn's column names (checked against it by the tests)
FEATURE_NAMES = (
    'mean radius', 'mean texture', 'mean perimeter',
    'mean area', 'mean smoothness', 'mean compactness',
    'mean concavity', 'mean concave points', 'mean symmetry',
    'mean fractal dimension', 'radius error', 'texture error',
    'perimeter error', 'area error', 'smoothness error',
    'compactness error', 'concavity error', 'concave points error',
    'symmetry error', 'fractal dimension error', 'worst radius',
    'worst texture', 'worst perimeter', 'worst area',
    'worst smoothness', 'worst compactness', 'worst concavity',
    'worst concave points', 'worst symmetry', 'worst fractal dimension',
)


@functools.lru_cache(maxsize=1)
def _read() -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    return (np.asarray(bunch.data, np.float64), np.asarray(bunch.target, np.int64),
            FEATURE_NAMES, CLASS_NAMES)


TABLE = _tabular.Table(NAME, "classification", N_ROWS, _read)


def load(*, test_fraction: float = 0.25, seed: int = 0, n_train: int | None = None,
         n_test: int | None = None) -> Dataset:
    """The breast-cancer rows as (N, 1, 30, 1) float32 z-scores (training statistics), int64
    labels; a stratified seeded split, then the first ``n_train`` / ``n_test`` rows of each
    split (None: all)."""
    return _tabular.load(TABLE, test_fraction=test_fraction, seed=seed, n_train=n_train,
                         n_test=n_test)


def describe(*, test_fraction: float = 0.25, seed: int = 0, n_train: int | None = None,
             n_test: int | None = None) -> DatasetInfo:
    """What :func:`load` with these parameters returns, checked without loading anything."""
    return _tabular.describe(TABLE, len(FEATURE_NAMES), len(CLASS_NAMES), FEATURE_NAMES,
                             test_fraction=test_fraction, n_train=n_train, n_test=n_test)
