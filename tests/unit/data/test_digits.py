"""scikit-learn digits loader."""

from __future__ import annotations

import numpy as np
import pytest

from xaibench.data import digits
from xaibench.errors import ConfigError


def test_shapes_and_range():
    ds = digits.load()
    assert ds.name == "digits" and ds.class_names == tuple("0123456789")
    assert ds.x_train.shape[1:] == (8, 8, 1) and ds.x_test.shape[1:] == (8, 8, 1)
    assert len(ds.x_train) + len(ds.x_test) == 1797
    assert len(ds.x_test) == pytest.approx(0.25 * 1797, abs=1)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert set(np.unique(ds.y_test)) == set(range(10))
    # stratified: class proportions match between the splits
    p_train = np.bincount(ds.y_train) / len(ds.y_train)
    p_test = np.bincount(ds.y_test) / len(ds.y_test)
    assert np.abs(p_train - p_test).max() < 0.01


def test_values_are_pixels_over_16():
    from sklearn.datasets import load_digits

    raw = load_digits()
    ds = digits.load(test_fraction=0.5, seed=1)
    first = ds.x_train[0, ..., 0] * 16
    matches = np.all(raw.images == first, axis=(1, 2))
    assert matches.any() and raw.target[matches][0] == ds.y_train[0]


def test_seeded_split():
    a, b, c = digits.load(seed=3), digits.load(seed=3), digits.load(seed=4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_train, c.y_train)


def test_subsets_and_validation():
    full = digits.load(seed=2)
    sub = digits.load(seed=2, n_train=100, n_test=20)
    np.testing.assert_array_equal(sub.x_train, full.x_train[:100])
    np.testing.assert_array_equal(sub.y_test, full.y_test[:20])
    sub.x_train[:] = 0  # fresh arrays: the cached copy is not affected
    assert digits.load(seed=2).x_train.max() == 1.0
    for kwargs in ({"test_fraction": 0.0}, {"test_fraction": 1.0}, {"test_fraction": "a"},
                   {"n_train": 5000},
                   {"n_test": -1}):
        with pytest.raises(ConfigError):
            digits.load(**kwargs)
