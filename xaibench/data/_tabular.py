"""Shared loader for scikit-learn's bundled tabular datasets (rows as (1, F, 1) images).

Features are standardised (z-scores) with the mean and standard deviation of the returned
training rows only, so no test statistic leaks into training. The spec's value range is
declared from the data: the scaled rows of both splits, widened outwards to whole numbers, so
every test row lies inside it (nothing is clipped). Regression targets are standardised by the
training targets too; :attr:`Dataset.target_scale` keeps (mean, std) to map them back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from xaibench.data.base import Dataset, DatasetInfo, check_count
from xaibench.errors import ConfigError


@dataclass(frozen=True)
class Table:
    """A bundled table: its name, task, size, and how to read it."""

    name: str
    task: str
    n_rows: int
    #: returns (features (N, F) float64, targets (N,), feature names, class names)
    read: Callable[[], tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]]


def load(table: Table, *, test_fraction: float, seed: int, n_train: int | None,
         n_test: int | None) -> Dataset:
    """``table`` split (seeded; stratified for classification), scaled by the training rows."""
    split_sizes(table, test_fraction)
    from sklearn.model_selection import train_test_split

    features, targets, feature_names, class_names = table.read()
    stratify = targets if table.task == "classification" else None
    x_train, x_test, y_train, y_test = train_test_split(
        features, targets, test_size=float(test_fraction), random_state=int(seed),
        stratify=stratify)
    n_train = check_count(table.name, "n_train", n_train, len(y_train))
    n_test = check_count(table.name, "n_test", n_test, len(y_test))
    x_train, y_train, x_test, y_test = (x_train[:n_train], y_train[:n_train], x_test[:n_test],
                                        y_test[:n_test])
    mean, std = x_train.mean(axis=0), _nonzero(x_train.std(axis=0))
    x_train, x_test = ((x - mean) / std for x in (x_train, x_test))
    target_scale = None
    if table.task == "regression":
        target_scale = (float(y_train.mean()), float(_nonzero(y_train.std())))
        y_train, y_test = ((y - target_scale[0]) / target_scale[1] for y in (y_train, y_test))
        y_train, y_test = y_train.astype(np.float32), y_test.astype(np.float32)
    both = np.concatenate([x_train, x_test])
    value_range = (float(math.floor(both.min())), float(math.ceil(both.max())))
    return Dataset(
        name=table.name, x_train=_rows(x_train), y_train=np.ascontiguousarray(y_train),
        x_test=_rows(x_test), y_test=np.ascontiguousarray(y_test), class_names=class_names,
        value_range=value_range, feature_names=feature_names, task=table.task,
        target_scale=target_scale)


def describe(table: Table, n_features: int, n_classes: int, feature_names: tuple[str, ...], *,
             test_fraction: float, n_train: int | None, n_test: int | None) -> DatasetInfo:
    """What :func:`load` returns for these parameters, checked without reading the table."""
    available_train, available_test = split_sizes(table, test_fraction)
    return DatasetInfo(shape=(1, n_features, 1), n_classes=n_classes,
                       n_train=check_count(table.name, "n_train", n_train, available_train),
                       n_test=check_count(table.name, "n_test", n_test, available_test),
                       feature_names=feature_names, task=table.task)


def split_sizes(table: Table, test_fraction: float) -> tuple[int, int]:
    """(train, test) row counts of the split, as scikit-learn computes them; each split must
    hold at least two rows (a standard deviation needs two)."""
    if (isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float))
            or not 0.0 < test_fraction < 1.0):
        raise ConfigError(f"{table.name}: test_fraction must be in (0, 1), got "
                          f"{test_fraction!r}")
    n_test = math.ceil(test_fraction * table.n_rows)
    if min(n_test, table.n_rows - n_test) < 2:
        raise ConfigError(f"{table.name}: test_fraction = {test_fraction} leaves a split with "
                          f"fewer than 2 of the {table.n_rows} rows; use a test_fraction in "
                          f"[{2 / table.n_rows:.3f}, {1 - 2 / table.n_rows:.3f}]")
    return table.n_rows - n_test, n_test


def _nonzero(std: np.ndarray) -> np.ndarray:
    """Standard deviations with 0 (a constant column) replaced by 1 (the column stays 0)."""
    return np.where(std > 0, std, 1.0)


def _rows(x: np.ndarray) -> np.ndarray:
    """(N, F) -> (N, 1, F, 1) float32, C-contiguous."""
    return np.ascontiguousarray(x, dtype=np.float32).reshape(len(x), 1, -1, 1)
