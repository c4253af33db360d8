"""Our Owen loop (``xaibench.explain._owen``) against shap's ``PartitionExplainer`` called
directly on the same seed with maskers that fill every mask as shap calls them: the values and
base values must be bit-identical (``np.array_equal``) whether the budget runs out early,
on an odd count, or never (the whole tree resolved), for one or several outputs, any batch
size, superpixels, tabular rows averaged over background rows, and trees with nodes that
are not split (negative distance)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.explain._backends import TinyTorchBackend, smooth_images
from xaibench.backend import ImageSpec
from xaibench.errors import ConfigError
from xaibench.explain._image_maskers import group_pixels
from xaibench.explain._shap_common import model_function, numpy_global_seed
from xaibench.explain.maskers import make_masker
from xaibench.explain.partition import partition


def shap_partition(backend, rows: np.ndarray, idx: np.ndarray, masker, seed: int,
                   **params) -> tuple[np.ndarray, np.ndarray]:
    """shap's PartitionExplainer, one row at a time with its outputs: values (N, M, K)."""
    import shap

    values, base = [], []
    for n in range(len(rows)):
        with numpy_global_seed(seed):
            explanation = shap.PartitionExplainer(model_function(backend), masker)(
                rows[n:n + 1], outputs=idx[n], silent=True, **params)
        values.append(np.asarray(explanation.values).reshape(-1, idx.shape[1]))
        base.append(np.asarray(explanation.base_values).reshape(-1))
    return np.stack(values), np.stack(base)


@pytest.mark.parametrize("max_evals, batch_size, outputs", [
    (20, 4, [[0], [2]]),             # the budget runs out after a few batches
    (61, 7, [[2, 0, 1], [1, 2, 0]]),  # odd budget and odd batch size: a batch of batch + 1
    (300, 50, [[1, 2], [0, 1]]),
    (5000, 16, [[0, 1], [2, 0]]),    # more than the whole tree needs: the queue empties
    (40, 1, [[1], [1]]),             # one node per batch
    (2, 3, [[0, 2], [1, 0]]),        # only f00 and f11: the root's credit spread evenly
])
@pytest.mark.parametrize("seed", [0, 7])
def test_image_values_equal_shaps(torch_backend, max_evals, batch_size, outputs, seed):
    x = smooth_images(2, torch_backend.spec.shape, seed=5)
    idx = np.array(outputs)
    values, base = partition(torch_backend, x, idx, masker="blur(3,3)", max_evals=max_evals,
                             batch_size=batch_size, seed=seed)
    ref_values, ref_base = shap_partition(
        torch_backend, x, idx, make_masker("blur(3,3)", x.shape[1:]), seed,
        max_evals=max_evals, batch_size=batch_size)
    assert np.array_equal(values.reshape(ref_values.shape), ref_values)
    assert np.array_equal(base, ref_base)


def test_superpixel_values_equal_shaps():
    spec = ImageSpec(shape=(9, 7, 3), class_names=("a", "b", "c"))
    backend = TinyTorchBackend(spec, seed=1)
    x = smooth_images(2, spec.shape, seed=2)
    idx = np.array([[0, 1], [2, 1]])
    masker = group_pixels(make_masker("inpaint_telea", spec.shape), 2)
    values, base = partition(backend, x, idx, masker="inpaint_telea", patch=2, max_evals=90,
                             batch_size=10, seed=3)
    ref_values, ref_base = shap_partition(backend, x, idx, masker, 3, max_evals=90,
                                          batch_size=10)
    assert np.array_equal(values, np.stack([masker.spread(v) for v in ref_values]))
    assert np.array_equal(base, ref_base)


TABULAR = ImageSpec((1, 5, 1), ("y", "z"), value_range=(-5.0, 5.0),
                    feature_names=tuple("abcde"))
#: features 2 and 3 merged at a negative distance: shap leaves that node's credit unsplit
UNSPLIT_PAIR = np.array([[0, 1, 0.5, 2], [2, 3, -1.0, 2], [5, 4, 1.0, 3], [7, 6, 2.0, 5]])


@pytest.mark.parametrize("clustering", ["correlation", UNSPLIT_PAIR], ids=["hclust", "unsplit"])
@pytest.mark.parametrize("max_evals", [12, 500])
def test_tabular_values_over_background_rows_equal_shaps(clustering, max_evals):
    import shap

    rng = np.random.default_rng(0)
    background = rng.normal(size=(30, 5)).astype(np.float32)
    background[:, 1] = background[:, 0] * 0.8
    x = rng.normal(size=(3, 1, 5, 1)).astype(np.float32)
    idx = np.array([[0, 1], [1, 0], [1, 1]])
    backend = TinyTorchBackend(TABULAR, seed=2)
    masker = shap.maskers.Partition(background, clustering=clustering)
    values, base = partition(backend, x, idx, masker=masker, max_evals=max_evals,
                             batch_size=6, seed=1)
    ref_values, ref_base = shap_partition(backend, x.reshape(3, 5), idx, masker, 1,
                                          max_evals=max_evals, batch_size=6)
    assert np.array_equal(values.reshape(ref_values.shape), ref_values)
    assert np.array_equal(base, ref_base)
    if clustering is UNSPLIT_PAIR:  # the unsplit pair shares its credit evenly
        assert np.array_equal(values[:, 0, 2], values[:, 0, 3])


def test_a_masker_without_a_partition_tree_is_refused():
    import shap

    masker = shap.maskers.Independent(np.zeros((4, 5), np.float32))
    backend = TinyTorchBackend(TABULAR, seed=2)
    with pytest.raises(ConfigError, match="partition needs a masker with a partition tree"):
        partition(backend, np.zeros((1, 1, 5, 1), np.float32), np.array([[0]]), masker=masker)
