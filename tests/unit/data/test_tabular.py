"""Tabular loaders (diabetes, breast_cancer): rows as (1, F, 1) images, training-only scaling."""

from __future__ import annotations

import numpy as np
import pytest

from xaibench.backend import ImageSpec
from xaibench.data import breast_cancer, diabetes
from xaibench.data.base import Dataset, check_labels
from xaibench.errors import ConfigError, DataError, XaibenchError


def test_shapes_specs_and_names():
    d, b = diabetes.load(), breast_cancer.load()
    assert d.x_train.shape == (331, 1, 10, 1) and d.x_test.shape == (111, 1, 10, 1)
    assert b.x_train.shape[1:] == (1, 30, 1) and len(b.x_train) + len(b.x_test) == 569
    assert d.spec.is_tabular and d.spec.task == "regression" and d.class_names == ("progression",)
    assert d.spec.feature_names == ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
    assert b.spec.task == "classification" and b.class_names == ("malignant", "benign")
    from sklearn.datasets import load_breast_cancer
    assert b.spec.feature_names == tuple(load_breast_cancer().feature_names)
    assert d.y_train.dtype == np.float32 and b.y_train.dtype == np.int64
    for ds in (d, b):  # the declared range holds every row of both splits
        ds.spec.check(ds.x_train), ds.spec.check(ds.x_test)


@pytest.mark.parametrize("module", [diabetes, breast_cancer])
def test_scaling_uses_training_rows_only(module):
    ds = module.load(test_fraction=0.3, seed=5, n_train=100)
    train = ds.x_train.reshape(len(ds.x_train), -1).astype(np.float64)
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(train.std(axis=0), 1, atol=1e-5)
    # the test rows are the raw rows scaled by the 100 training rows' statistics
    from sklearn.model_selection import train_test_split
    features, targets, _, _ = module._read()
    raw_train, raw_test, y_train, y_test = train_test_split(
        features, targets, test_size=0.3, random_state=5,
        stratify=targets if module is breast_cancer else None)
    mean, std = raw_train[:100].mean(axis=0), raw_train[:100].std(axis=0)
    np.testing.assert_allclose(ds.x_test.reshape(len(ds.x_test), -1), (raw_test - mean) / std,
                               rtol=1e-5, atol=1e-5)
    test = ds.x_test.reshape(len(ds.x_test), -1)
    assert np.abs(test.mean(axis=0)).max() > 1e-3  # not re-standardised on the test split
    if module is diabetes:
        target_mean, target_std = ds.target_scale
        assert (target_mean, target_std) == pytest.approx((y_train[:100].mean(),
                                                           y_train[:100].std()))
        np.testing.assert_allclose(ds.y_test * target_std + target_mean, y_test, rtol=1e-5)


def test_split_is_seeded():
    a, b, c = diabetes.load(seed=3), diabetes.load(seed=3), diabetes.load(seed=4)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.y_test, c.y_test)
    cancer = breast_cancer.load(seed=1)  # stratified
    assert abs(cancer.y_train.mean() - cancer.y_test.mean()) < 0.02


def test_describe_matches_load_and_checks_params():
    for module in (diabetes, breast_cancer):
        info, ds = module.describe(test_fraction=0.2, n_test=50), module.load(test_fraction=0.2,
                                                                                n_test=50)
        assert (info.shape, info.n_train, info.n_test) == (ds.spec.shape, len(ds.x_train), 50)
        assert info.feature_names == ds.feature_names and info.task == ds.task
        assert info.n_classes == ds.spec.n_classes and info.is_tabular
    with pytest.raises(ConfigError, match=r"diabetes: test_fraction must be in \(0, 1\)"):
        diabetes.describe(test_fraction=1.5)
    with pytest.raises(ConfigError, match=r"breast_cancer: n_train must be an integer in 0\.\.426"):
        breast_cancer.describe(n_train=1000)


def _tiny(**changes):
    fields = dict(x_train=np.zeros((4, 1, 3, 1), np.float32), y_train=np.zeros(4, np.float32),
                  x_test=np.zeros((2, 1, 3, 1), np.float32), y_test=np.ones(2, np.float32),
                  feature_names=("a", "b", "c"))
    return Dataset(name="t", class_names=("y",), task="regression", **{**fields, **changes})


def test_labels_must_fit_the_task():
    assert _tiny().spec.task == "regression"
    with pytest.raises(DataError, match=r"dataset 't': y_train must hold 4 finite float32 "
                                        r"regression targets; got int64"):
        _tiny(y_train=np.zeros(4, np.int64))
    with pytest.raises(DataError, match=r"y_test must hold 2 finite float32"):
        _tiny(y_test=np.array([0.0, np.nan], np.float32))
    spec = ImageSpec(shape=(1, 3, 1), class_names=("a", "b"), feature_names=("u", "v", "w"))
    with pytest.raises(XaibenchError, match=r"labels must hold 2 integer labels in 0\.\.1; got "
                                            r"float32.*declare task='regression'"):
        check_labels(np.zeros(2, np.float32), 2, spec)
    with pytest.raises(DataError, match=r"2 feature names do not fit shape \(1, 3, 1\)"):
        _tiny(feature_names=("a", "b"))
