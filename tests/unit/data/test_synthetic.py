"""Synthetic glyph images: determinism, masks, balance, learnability."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from xaibench.data import synthetic
from xaibench.errors import ConfigError


def _assert_same(a, b):
    for field in ("x_train", "y_train", "x_test", "y_test", "masks_train", "masks_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_record_format():
    ds = synthetic.load(n_train=40, n_test=12, size=20, n_classes=3)
    assert ds.name == "synthetic"
    assert ds.x_train.shape == (40, 20, 20, 1) and ds.x_test.shape == (12, 20, 20, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.masks_train.shape == (40, 20, 20) and ds.masks_train.dtype == bool
    assert ds.masks_test.shape == (12, 20, 20)
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert ds.class_names == ("plus", "cross", "square")
    assert set(np.unique(ds.y_train)) == {0, 1, 2}
    assert ds.spec.shape == (20, 20, 1)


def test_deterministic():
    a = synthetic.load(n_train=50, n_test=20, seed=7)
    _assert_same(a, synthetic.load(n_train=50, n_test=20, seed=7))
    b = synthetic.load(n_train=50, n_test=20, seed=8)
    assert not np.array_equal(a.x_train, b.x_train)
    # the test set does not depend on n_train (independent streams)
    c = synthetic.load(n_train=10, n_test=20, seed=7)
    np.testing.assert_array_equal(a.x_test, c.x_test)
    np.testing.assert_array_equal(a.masks_test, c.masks_test)


@pytest.mark.parametrize("n_classes", [2, 4, 10])
def test_masks_are_exactly_the_glyph(n_classes):
    ds = synthetic.load(n_train=60, n_test=10, n_classes=n_classes, size=16, noise=0.05, seed=1)
    for x, y, mask in zip(ds.x_train[..., 0], ds.y_train, ds.masks_train):
        rows, cols = np.nonzero(mask)
        r0, c0 = rows.min(), cols.min()
        assert rows.max() - r0 == cols.max() - c0 == 4  # every glyph spans its 5x5 box
        np.testing.assert_array_equal(mask[r0:r0 + 5, c0:c0 + 5], synthetic.GLYPHS[y])
        assert mask.sum() == synthetic.GLYPHS[y].sum()
        assert x[mask].mean() > 0.75 and x[~mask].mean() < 0.35


def test_glyphs_distinct_and_none_inside_another():
    g = synthetic.GLYPHS
    assert g.shape == (10, 5, 5) and len(set(synthetic.GLYPH_NAMES)) == 10
    for i in range(len(g)):
        for j in range(len(g)):
            if i != j:
                assert (g[i] & ~g[j]).any(), (synthetic.GLYPH_NAMES[i], synthetic.GLYPH_NAMES[j])


def test_balanced_and_random_positions():
    ds = synthetic.load(n_train=402, n_test=10, n_classes=4)
    counts = np.bincount(ds.y_train)
    assert counts.max() - counts.min() <= 1
    assert len(set(ds.y_train[:8].tolist())) > 1  # shuffled, not sorted by class
    tops = {tuple(np.argwhere(m).min(0)) for m in ds.masks_train}
    assert len(tops) > 100


def _nearest_template(images: np.ndarray, templates: np.ndarray) -> np.ndarray:
    """Class whose template best matches (least squares) at some position of each image."""
    windows = sliding_window_view(images, templates.shape[1:], axis=(1, 2))
    energy = (windows ** 2).sum((-2, -1))[:, None]
    cross = np.einsum("nijab,kab->nkij", windows, templates)
    dist = energy - 2 * cross + (templates ** 2).sum((1, 2))[None, :, None, None]
    return dist.min((2, 3)).argmin(1)


def test_learnable_from_training_data():
    """Templates averaged from masked training crops classify unseen test images."""
    ds = synthetic.load(n_train=200, n_test=200, n_classes=4, noise=0.2, seed=3)
    crops = []
    for x, mask in zip(ds.x_train[..., 0], ds.masks_train):
        r0, c0 = np.argwhere(mask).min(0)
        crops.append(x[r0:r0 + 5, c0:c0 + 5])
    crops = np.stack(crops)
    templates = np.stack([crops[ds.y_train == k].mean(0) for k in range(4)])
    accuracy = (_nearest_template(ds.x_test[..., 0], templates) == ds.y_test).mean()
    assert accuracy > 0.9  # chance is 0.25


def test_validation():
    for kwargs in ({"n_classes": 1}, {"n_classes": 11}, {"size": 4}, {"n_train": -1},
                   {"noise": -0.1}, {"noise": float("nan")}, {"seed": -1}, {"n_test": 2.0}):
        with pytest.raises(ConfigError):
            synthetic.load(**kwargs)
    ds = synthetic.load(n_train=0, n_test=3, size=5)
    assert ds.x_train.shape == (0, 5, 5, 1) and ds.x_test.shape == (3, 5, 5, 1)
