"""Cascading model-parameter randomisation (MPRT, smooth and efficient MPRT) on a numpy ReLU
network (and torch)."""

from __future__ import annotations

import numpy as np
import pytest

from xaibench.backend import Attribution, Backend, ImageSpec
from xaibench.errors import ConfigError
from xaibench.metrics import (MPRT, EfficientMPRT, SmoothMPRT, discrete_entropy, mprt_curve,
                              smooth_mprt_curve)
from xaibench.metrics._ranking import pixel_relevance
from xaibench.metrics.base import MetricContext


def test_explainer_ignoring_the_model_scores_one(net, images, with_input_explainer):
    x = images(4, net.spec.shape)
    attribution = net.explain("input", x, 2)
    names, curve = mprt_curve(net, x, attribution)
    assert names == ["dense2", "dense1"]
    assert curve.shape == (4, 2, 2)
    np.testing.assert_allclose(curve, 1.0)
    np.testing.assert_allclose(MPRT()(net, x, attribution), 1.0)


def test_gradient_times_input_decorrelates_with_the_model(net, images):
    x = images(6, net.spec.shape, seed=1)
    params = {"background": np.zeros((1, *net.spec.shape), np.float32), "nsamples": 1}
    attribution = net.explain("gradient", x, 1, **params)
    before = net.predict(x)
    names, curve = mprt_curve(net, x, attribution, explain_params=params, seed=3)
    context = MetricContext()
    score = MPRT(seed=3)(net, x, attribution, explain_params=params, context=context)
    np.testing.assert_allclose(score, curve.mean(axis=-1))
    np.testing.assert_array_equal(context.arrays["mprt_curve"], curve)
    layers = context.arrays["mprt_layers"]
    assert layers.dtype.kind == "U" and layers.tolist() == names  # loads without pickle
    assert curve.shape == (6, 1, 2)
    # Spearman of |grad ⊙ x| keeps the |x| factor, so similarity stays above 0 but far below 1
    assert float(score.mean()) < 0.6, curve
    assert np.all(curve < 0.9)
    np.testing.assert_array_equal(net.predict(x), before)  # the original model is untouched


def test_background_must_be_passed_through_explain_params(net, images):
    x = images(2, net.spec.shape)
    attribution = net.explain("gradient", x, 1, background=np.zeros((1, *net.spec.shape)))
    assert "background" not in attribution.params
    for metric in (MPRT(), SmoothMPRT(), EfficientMPRT()):
        with pytest.raises(ConfigError, match="explain_params"):
            metric(net, x, attribution)


def test_torch_backend_randomisation(with_input_explainer):
    pytest.importorskip("torch")
    from backends.torch_backend import TorchBackend

    if TorchBackend.randomized is Backend.randomized:
        pytest.skip("TorchBackend does not implement randomized() yet")
    spec = ImageSpec(shape=(8, 8, 1), class_names=("a", "b", "c"))
    backend = TorchBackend.from_zoo("fmnist_cnn", spec, seed=0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (3, *spec.shape)).astype(np.float32)
    params = {"background": rng.uniform(0, 1, (4, *spec.shape)).astype(np.float32)}
    attribution = backend.explain("deep", x, 1, **params)
    names, curve = mprt_curve(backend, x, attribution, explain_params=params)
    assert names == backend.layer_names()[::-1]
    assert curve.shape == (3, 1, len(names))
    assert float(curve[..., -1].mean()) < 0.5, curve  # whole model re-initialised
    np.testing.assert_allclose(MPRT()(backend, x, backend.explain("input", x, 2)), 1.0)


GRADIENT_PARAMS = {"nsamples": 1}


def _gradient(net, x):
    params = {**GRADIENT_PARAMS, "background": np.zeros((1, *net.spec.shape), np.float32)}
    return net.explain("gradient", x, 1, **params), params


def test_smooth_mprt_without_noise_is_mprt(net, images):
    x = images(5, net.spec.shape, seed=2)
    attribution, params = _gradient(net, x)
    names, curve = mprt_curve(net, x, attribution, explain_params=params, seed=4)
    smooth_names, smooth = smooth_mprt_curve(net, x, attribution, explain_params=params, seed=4,
                                             noise=0.0, n_samples=1)
    assert smooth_names == names
    np.testing.assert_allclose(smooth, curve, atol=1e-12)
    np.testing.assert_allclose(SmoothMPRT(noise=0.0, n_samples=1, seed=4)(
        net, x, attribution, explain_params=params), MPRT(seed=4)(
        net, x, attribution, explain_params=params), atol=1e-12)


def test_smooth_mprt_averages_noisy_copies(net, images, with_input_explainer):
    x = images(3, net.spec.shape, seed=3)
    # the input explainer ignores the model: its noise-averaged map is the same for every model
    np.testing.assert_allclose(SmoothMPRT(noise=0.2, n_samples=4)(net, x,
                                                                  net.explain("input", x, 2)), 1.0)
    attribution, params = _gradient(net, x)
    score = SmoothMPRT(noise=0.05, n_samples=3, seed=1)(net, x, attribution,
                                                          explain_params=params)
    assert score.shape == (3, 1) and np.all(score < 0.9), score


def test_discrete_entropy_closed_forms():
    constant = np.full((2, 1, 50), 0.7)
    np.testing.assert_array_equal(discrete_entropy(constant, 10), 0.0)
    spread = np.linspace(0.0, 1.0, 100, endpoint=False)  # 10 values in each of 10 bins
    np.testing.assert_allclose(discrete_entropy(spread, 10), np.log(10))
    two_values = np.array([0.0] * 3 + [1.0])  # bins 0 and 9: p = 3/4, 1/4
    np.testing.assert_allclose(discrete_entropy(two_values, 10),
                               -(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))
    noise = np.abs(np.random.default_rng(0).standard_normal(5000))
    assert discrete_entropy(noise, 100) > 3.0  # close to log(100) = 4.6 for unstructured maps


def test_efficient_mprt(net, images, with_input_explainer):
    x = images(4, net.spec.shape, seed=4)
    np.testing.assert_allclose(EfficientMPRT()(net, x, net.explain("input", x, 2)), 1.0)
    attribution, params = _gradient(net, x)
    randomized = net.randomized(len(net.layer_names()), seed=2)
    again = randomized.explain("gradient", x, attribution.output_indices, **params)
    expected = (discrete_entropy(np.abs(pixel_relevance(again.values)), 20)
                / discrete_entropy(np.abs(pixel_relevance(attribution.values)), 20))
    np.testing.assert_allclose(EfficientMPRT(n_bins=20, seed=2)(
        net, x, attribution, explain_params=params), expected)
    constant = Attribution("input", np.ones_like(attribution.values), attribution.output_indices,
                           attribution.base_values, attribution.model_outputs, 0.0, 0, {})
    assert np.isnan(EfficientMPRT()(net, x, constant)).all()  # no complexity to rise from


@pytest.mark.parametrize("make, message", [
    (lambda: SmoothMPRT(noise=-0.1), "noise"), (lambda: SmoothMPRT(n_samples=0), "n_samples"),
    (lambda: EfficientMPRT(n_bins=1), "n_bins")])
def test_bad_parameters_are_config_errors(make, message):
    with pytest.raises(ConfigError, match=message):
        make()

