"""Feature grouping (``patch``): partition and permutation over square superpixels.

Checked against the ungrouped explainers (patch = 1 on one-channel images is the same
explanation, bit for bit), closed-form group Shapley values of a linear model, additivity,
a 224x224x3 image whose cost does not grow with its pixels, and the refusals."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

from tests.unit.explain._backends import TinyTorchBackend, smooth_images
from xaibench.backend import ImageSpec
from xaibench.errors import ConfigError
from xaibench.explain.maskers import constant, make_masker, patch_grid, patch_labels
from xaibench.explain.partition import partition
from xaibench.explain.permutation import min_max_evals, permutation
from xaibench.testing import LinearBackend

EXPLAINERS = {"partition": (partition, {"max_evals": 60}), "permutation": (permutation, {})}


@pytest.mark.parametrize("spec", ["blur(3,3)", "inpaint_telea"])
@pytest.mark.parametrize("method", list(EXPLAINERS))
def test_patch_1_on_one_channel_images_is_the_ungrouped_explanation(torch_backend, method,
                                                                     spec):
    explain, params = EXPLAINERS[method]
    x = smooth_images(2, torch_backend.spec.shape, seed=11)
    idx = np.array([[0, 2], [1, 0]])
    values, base = explain(torch_backend, x, idx, masker=spec, seed=4, **params)
    grouped, grouped_base = explain(torch_backend, x, idx, masker=spec, seed=4, patch=1,
                                    **params)
    assert np.array_equal(grouped, values)
    assert np.array_equal(grouped_base, base)


def test_patch_labels_cut_the_last_superpixels_at_the_edge():
    assert patch_grid((5, 7, 3), 3) == (2, 3)
    np.testing.assert_array_equal(patch_labels((5, 7, 3), 3), [[0, 0, 0, 1, 1, 1, 2],
                                                               [0, 0, 0, 1, 1, 1, 2],
                                                               [0, 0, 0, 1, 1, 1, 2],
                                                               [3, 3, 3, 4, 4, 4, 5],
                                                               [3, 3, 3, 4, 4, 4, 5]])


@pytest.mark.parametrize("method, params", [("partition", {"max_evals": 200}),
                                            ("permutation", {})])
def test_linear_model_gets_the_closed_form_shapley_value_of_each_superpixel(method, params):
    # f = flatten(x) @ W + b is additive over any grouping, so with a fixed background r the
    # Shapley value of superpixel g is exactly sum_{i in g} W_i (x_i - r_i), and each of its
    # pixel-channels gets that divided by the superpixel's size. 5x7 images with patch = 3
    # have superpixels of 3x3, 3x1, 2x3 and 2x1 pixels (cut at the edge), 2 channels each.
    spec = ImageSpec(shape=(5, 7, 2), class_names=("a", "b", "c"))
    backend = LinearBackend.from_zoo("linear", spec, seed=0)
    labels = np.repeat(patch_labels(spec.shape, 3)[..., None], 2, axis=-1).reshape(-1)
    x = np.repeat(np.repeat(smooth_images(2, (2, 3, 2), seed=12), 3, axis=1), 3, axis=2)
    x = np.ascontiguousarray(x[:, :5, :7])  # constant within each superpixel
    attribution = backend.explain(method, x, 2, masker=constant(spec.shape, 0.25), patch=3,
                                  **params)
    contribution = (x.reshape(2, -1) - 0.25)[:, :, None] * \
        backend.weights[:, attribution.output_indices].transpose(1, 0, 2)  # (N, M, K)
    per_group = np.stack([np.stack([np.bincount(labels, contribution[n, :, k])
                                    for k in range(2)], -1) for n in range(2)])  # (N, G, K)
    expected = per_group[:, labels] / np.bincount(labels)[labels][None, :, None]
    np.testing.assert_allclose(attribution.values.reshape(2, -1, 2), expected, atol=1e-6)
    assert attribution.additivity_gap().max() < 1e-5
    assert attribution.params["patch"] == 3


@pytest.mark.parametrize("spec", ["blur(3,3)", "inpaint_ns"])
@pytest.mark.parametrize("method", list(EXPLAINERS))
def test_grouped_attributions_are_additive_and_uniform_within_a_superpixel(torch_backend,
                                                                           method, spec):
    explain, params = EXPLAINERS[method]
    x = smooth_images(2, torch_backend.spec.shape, seed=13)
    attribution = torch_backend.explain(method, x, 2, masker=spec, patch=3, **params)
    assert attribution.values.shape == (2, 8, 8, 1, 2)
    assert attribution.additivity_gap().max() < 1e-4
    labels = patch_labels(torch_backend.spec.shape, 3)
    for group in range(9):
        inside = attribution.values[:, labels == group]
        np.testing.assert_array_equal(inside, np.broadcast_to(inside[:, :1], inside.shape))
    assert np.abs(attribution.values).sum() > 0
    if method == "permutation":  # one antithetic permutation of the 3x3 superpixels
        assert attribution.model_evals == 2 * min_max_evals(torch_backend.spec.shape, 3)
        assert min_max_evals(torch_backend.spec.shape, 3) == 2 * 9 + 1


@pytest.mark.parametrize("method", list(EXPLAINERS))
def test_a_grouped_masker_never_builds_the_pixel_tree(torch_backend, method):
    # shap's tree over H*W*C leaves takes seconds at 224x224x3; superpixels use their own
    explain, params = EXPLAINERS[method]
    masker = make_masker("blur(3,3)", torch_backend.spec.shape)
    x = smooth_images(1, torch_backend.spec.shape, seed=15)
    explain(torch_backend, x, np.zeros((1, 1), np.int64), masker=masker, patch=2, **params)
    assert masker._clustering is None
    explain(torch_backend, x, np.zeros((1, 1), np.int64), masker=masker, **params)
    assert masker.clustering.shape == (8 * 8 - 1, 4)


@pytest.fixture(scope="module")
def large_backend() -> TinyTorchBackend:
    pytest.importorskip("torch")
    spec = ImageSpec(shape=(224, 224, 3), class_names=("a", "b"))
    return TinyTorchBackend(spec, seed=0, batch_size=64)


@pytest.mark.parametrize("method, params", [("permutation", {}),
                                            ("partition", {"max_evals": 60})])
def test_224x224x3_with_patch_32_costs_what_its_49_superpixels_cost(large_backend, method,
                                                                    params):
    # ungrouped, permutation refuses this shape (a 301057 x 150528 mask matrix, 42 GiB) and
    # partition's tree has 150,528 leaves; with patch = 32 both switch 7x7 = 49 features
    x = smooth_images(1, large_backend.spec.shape, seed=14)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        attribution = large_backend.explain(method, x, 1, patch=32, **params)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 60
    assert peak < 200 * 2**20, f"{peak / 2**20:.0f} MB traced"
    assert attribution.additivity_gap().max() < 1e-4
    if method == "permutation":
        assert attribution.model_evals == 2 * 49 + 1


@pytest.mark.parametrize("patch", [0, -2, 9, 1.5, True, "8"])
@pytest.mark.parametrize("method", list(EXPLAINERS))
def test_bad_patch_values_are_refused_before_any_evaluation(linear_backend, method, patch):
    explain, _ = EXPLAINERS[method]
    x = smooth_images(1, linear_backend.spec.shape)
    with pytest.raises(ConfigError, match=r"patch must be an integer in 1\.\.4 .*4x4 images"):
        explain(linear_backend, x, np.zeros((1, 1), np.int64), patch=patch)
    assert linear_backend.n_evals == 0


@pytest.mark.parametrize("method", list(EXPLAINERS))
def test_tabular_rows_refuse_patch(method):
    spec = ImageSpec(shape=(1, 6, 1), class_names=("y",), feature_names=tuple("abcdef"),
                     task="regression")
    backend = LinearBackend.from_zoo("linear", spec, seed=0)
    explain, _ = EXPLAINERS[method]
    with pytest.raises(ConfigError, match="tabular rows of 6 features; remove patch"):
        explain(backend, np.zeros((1, 1, 6, 1), np.float32), np.zeros((1, 1), np.int64),
                patch=1)
    assert backend.n_evals == 0


def test_permutation_refusal_points_to_patch_and_patch_lifts_it():
    spec = ImageSpec(shape=(224, 224, 3), class_names=("a", "b"))
    backend = LinearBackend(spec, np.zeros((224 * 224 * 3, 2), np.float32), np.zeros(2))
    x = np.zeros((1, 224, 224, 3), np.float32)
    with pytest.raises(ConfigError, match=r"mask matrix \(42\.2 GiB\) per permutation; group "
                                          r"pixels into superpixels with patch = 8 \(M = 784 "
                                          r"features\)"):
        permutation(backend, x, np.zeros((1, 1), np.int64))
    with pytest.raises(ConfigError, match=r"max_evals >= 2\*M \+ 1 = 1569 .*28x28 superpixels "
                                          r"of patch = 8 = 784 features"):
        permutation(backend, x, np.zeros((1, 1), np.int64), patch=8, max_evals=1000)
    assert backend.n_evals == 0
