"""partition / permutation / random over backend.predict: exactness, additivity, counting."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.unit.explain._backends import smooth_images
from xaibench.errors import ConfigError
from xaibench.explain.maskers import constant
from xaibench.explain.partition import partition
from xaibench.explain.permutation import min_max_evals, permutation

ALL_SPECS = ["inpaint_telea", "inpaint_ns", "blur(3,3)"]
#: enough for shap's partition tree over 4*4*2 = 32 features to be fully resolved (684 evals)
FULL_PARTITION = 2000


def linear_shap(backend, x, output_indices, reference):
    """Exact SHAP values of f = flatten(x) @ W + b when hidden features take ``reference``."""
    n = len(x)
    delta = (x - reference).reshape(n, -1).astype(np.float64)
    weights = backend.weights[:, output_indices].transpose(1, 0, 2)  # (N, M, K)
    return (delta[:, :, None] * weights).reshape(*x.shape, output_indices.shape[1])


def blurred(x, kernel):
    return np.stack([np.asarray(cv2.blur(image, kernel)).reshape(image.shape) for image in x])


# --- exactness on a linear model ---------------------------------------------------------------
@pytest.mark.parametrize("method, params", [("partition", {"max_evals": FULL_PARTITION}),
                                            ("permutation", {})])
def test_linear_model_constant_masker_recovers_exact_shap_values(linear_backend, method, params):
    x = smooth_images(2, linear_backend.spec.shape)
    masker = constant(linear_backend.spec.shape, 0.5)
    attribution = linear_backend.explain(method, x, 2, masker=masker, **params)
    expected = linear_shap(linear_backend, x, attribution.output_indices, 0.5)
    np.testing.assert_allclose(attribution.values, expected, atol=1e-5)
    np.testing.assert_allclose(attribution.base_values,
                               linear_backend.predict(np.full_like(x, 0.5))[
                                   np.arange(2)[:, None], attribution.output_indices], atol=1e-5)
    assert attribution.additivity_gap().max() < 1e-5


@pytest.mark.parametrize("method, params", [("partition", {"max_evals": FULL_PARTITION}),
                                            ("permutation", {})])
def test_linear_model_blur_masker_recovers_exact_shap_values(linear_backend, method, params):
    # blur is computed once from the full image, so each feature is hidden independently:
    # the exact values are w_i * (x_i - blur(x)_i)
    x = smooth_images(2, linear_backend.spec.shape, seed=1)
    attribution = linear_backend.explain(method, x, [[0, 3], [2, 1]], masker="blur(3,3)",
                                         **params)
    expected = linear_shap(linear_backend, x, attribution.output_indices, blurred(x, (3, 3)))
    np.testing.assert_allclose(attribution.values, expected, atol=1e-5)


@pytest.mark.parametrize("spec", ALL_SPECS)
@pytest.mark.parametrize("method, params", [("partition", {"max_evals": 100}),
                                            ("permutation", {})])
def test_linear_model_is_additive_with_every_masker(linear_backend, spec, method, params):
    x = smooth_images(3, linear_backend.spec.shape, seed=2)
    attribution = linear_backend.explain(method, x, 2, masker=spec, **params)
    assert attribution.values.shape == (3, 4, 4, 2, 2)
    assert attribution.additivity_gap().max() < 1e-5
    assert np.abs(attribution.values).sum() > 0


def test_partition_with_a_small_budget_is_still_additive(linear_backend):
    x = smooth_images(2, linear_backend.spec.shape, seed=3)
    attribution = linear_backend.explain("partition", x, 1, masker="inpaint_telea", max_evals=20)
    assert attribution.additivity_gap().max() < 1e-5
    assert attribution.model_evals <= 2 * 21


# --- a tiny real torch model -------------------------------------------------------------------
@pytest.mark.parametrize("spec", ALL_SPECS)
def test_partition_on_a_torch_model(torch_backend, spec):
    x = smooth_images(3, torch_backend.spec.shape, seed=4)
    scores = torch_backend.predict(x)
    attribution = torch_backend.explain("partition", x, targets=2, masker=spec, max_evals=120,
                                        batch_size=32)
    assert attribution.values.shape == (3, 8, 8, 1, 2)
    np.testing.assert_array_equal(attribution.output_indices,
                                  np.argsort(-scores, axis=1, kind="stable")[:, :2])
    assert attribution.additivity_gap().max() < 1e-4
    assert 0 < attribution.model_evals <= 3 * (120 + 1)
    assert attribution.params == {"masker": spec, "max_evals": 120, "batch_size": 32}


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_permutation_on_a_torch_model(torch_backend, spec):
    x = smooth_images(2, torch_backend.spec.shape, seed=5)
    minimum = min_max_evals(torch_backend.spec.shape)
    assert minimum == 2 * 64 + 1
    attribution = torch_backend.explain("permutation", x, targets=2, masker=spec,
                                        max_evals=2 * minimum + 7)
    assert attribution.values.shape == (2, 8, 8, 1, 2)
    assert attribution.additivity_gap().max() < 1e-4
    # max_evals // (2M+1) = 2 antithetic permutations of 2M+1 evaluations per image
    assert attribution.model_evals == 2 * 2 * minimum


def test_explicit_outputs_select_the_same_columns_as_top_k(torch_backend):
    # (partition's columns are checked against exact values in the linear tests; with a
    # limited budget it spends evaluations where the requested outputs *jointly* change most,
    # so its columns legitimately depend on which outputs are explained together)
    x = smooth_images(2, torch_backend.spec.shape, seed=6)
    top = torch_backend.explain("permutation", x, 3, masker="blur(3,3)")
    for k in range(3):
        single = torch_backend.explain("permutation", x, top.output_indices[:, k],
                                       masker="blur(3,3)")
        np.testing.assert_allclose(single.values[..., 0], top.values[..., k], atol=1e-6)
        np.testing.assert_allclose(single.base_values[:, 0], top.base_values[:, k], atol=1e-6)


# --- seeds and batches -------------------------------------------------------------------------
@pytest.mark.parametrize("method, params", [("partition", {"max_evals": 40}),
                                            ("permutation", {})])
def test_results_are_seeded_and_independent_of_the_batch(torch_backend, method, params):
    x = smooth_images(3, torch_backend.spec.shape, seed=7)
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    batch = torch_backend.explain(method, x, [0, 1, 2], masker="blur(3,3)", **params)
    assert np.array_equal(np.random.get_state()[1], state), "numpy's global RNG was changed"
    alone = torch_backend.explain(method, x[2:], [2], masker="blur(3,3)", **params)
    np.testing.assert_allclose(alone.values[0], batch.values[2], atol=1e-6)
    again = torch_backend.explain(method, x, [0, 1, 2], masker="blur(3,3)", **params)
    np.testing.assert_array_equal(again.values, batch.values)


# --- parameter errors --------------------------------------------------------------------------
def test_permutation_max_evals_too_small_names_the_minimum(linear_backend):
    x = smooth_images(1, linear_backend.spec.shape)
    evals = linear_backend.n_evals
    with pytest.raises(ConfigError, match=r"max_evals >= 2\*M \+ 1 = 65 .*4\*4\*2 = 32"):
        permutation(linear_backend, x, np.zeros((1, 1), np.int64), max_evals=64)
    with pytest.raises(ConfigError, match="65"):
        linear_backend.explain("permutation", x, 1, max_evals=40)
    assert linear_backend.n_evals == evals + 1  # only explain's own prediction of x ran


def test_permutation_refuses_an_absurd_mask_matrix():
    from xaibench.testing import LinearBackend
    from xaibench.backend import ImageSpec

    spec = ImageSpec(shape=(224, 224, 3), class_names=("a", "b"))
    backend = LinearBackend(spec, np.zeros((1, 2)), np.zeros(2))
    x = np.zeros((1, 224, 224, 3), np.float32)
    with pytest.raises(ConfigError, match="mask matrix"):
        permutation(backend, x, np.zeros((1, 1), np.int64))
    assert backend.n_evals == 0


@pytest.mark.parametrize("fn, params", [
    (partition, {"max_evals": 1}), (partition, {"batch_size": 0}),
    (partition, {"masker": "blurr(3,3)"}), (partition, {"masker": 3}),
    (permutation, {"batch_size": 1.5}), (permutation, {"masker": "blur(3,"}),
    (partition, {"seed": -1}), (permutation, {"seed": "0"}),
    (partition, {"masker": constant((4, 4, 1))}),
])
def test_bad_parameters_raise_config_error(linear_backend, fn, params):
    x = smooth_images(1, linear_backend.spec.shape)
    with pytest.raises(ConfigError):
        fn(linear_backend, x, np.zeros((1, 1), np.int64), **params)
    assert linear_backend.n_evals == 0


def test_empty_batches(linear_backend):
    x = smooth_images(2, linear_backend.spec.shape)
    for fn in (partition, permutation):
        values, base = fn(linear_backend, x, np.zeros((2, 0), np.int64))
        assert values.shape == (2, 4, 4, 2, 0) and base.shape == (2, 0)
        values, base = fn(linear_backend, x[:0], np.zeros((0, 2), np.int64))
        assert values.shape == (0, 4, 4, 2, 2) and base.shape == (0, 2)
    assert linear_backend.n_evals == 0


# --- the random baseline -----------------------------------------------------------------------
def test_random_baseline(torch_backend):
    x = smooth_images(2, torch_backend.spec.shape, seed=8)
    attribution = torch_backend.explain("random", x, 2, seed=3)
    assert attribution.values.shape == (2, 8, 8, 1, 2)
    np.testing.assert_allclose(attribution.base_values, attribution.model_outputs, rtol=1e-6)
    assert attribution.model_evals == 2
    assert 0.8 < attribution.values.std() < 1.2
    again = torch_backend.explain("random", x, 2, seed=3)
    np.testing.assert_array_equal(again.values, attribution.values)
    other = torch_backend.explain("random", x, 2, seed=4)
    assert not np.array_equal(other.values, attribution.values)
