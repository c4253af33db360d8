"""scikit-learn's bundled diabetes table (442 patients, 10 features; regression of disease
progression one year after baseline), rows as (1, 10, 1) images.

Features and target are standardised with the training split's statistics
(:mod:`xaibench.data._tabular`); ``Dataset.target_scale`` maps targets back to the original
units.
"""

from __future__ import annotations

import functools

import numpy as np

from xaibench.data import _tabular
from xaibench.data.base import Dataset, DatasetInfo

NAME = "diabetes"
#: the target's name (the one output of a regression model)
TARGET = "progression"
FEATURE_NAMES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
N_ROWS = 442


@functools.lru_cache(maxsize=1)
def _read() -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]:
    from sklearn.datasets import load_diabetes

    # scaled=False: the raw measurements (scikit-learn's default pre-scales with all 442 rows)
    bunch = load_diabetes(scaled=False)
    return (np.asarray(bunch.data, np.float64), np.asarray(bunch.target, np.float64),
            FEATURE_NAMES, (TARGET,))


TABLE = _tabular.Table(NAME, "regression", N_ROWS, _read)


def load(*, test_fraction: float = 0.25, seed: int = 0, n_train: int | None = None,
         n_test: int | None = None) -> Dataset:
    """The diabetes rows as (N, 1, 10, 1) float32 z-scores (training statistics) and float32
    standardised targets; a seeded split (``train_test_split(random_state=seed)``), then the
    first ``n_train`` / ``n_test`` rows of each split (None: all)."""
    return _tabular.load(TABLE, test_fraction=test_fraction, seed=seed, n_train=n_train,
                         n_test=n_test)


def describe(*, test_fraction: float = 0.25, seed: int = 0, n_train: int | None = None,
             n_test: int | None = None) -> DatasetInfo:
    """What :func:`load` with these parameters returns, checked without loading anything."""
    return _tabular.describe(TABLE, len(FEATURE_NAMES), 1, FEATURE_NAMES,
                             test_fraction=test_fraction, n_train=n_train, n_test=n_test)
