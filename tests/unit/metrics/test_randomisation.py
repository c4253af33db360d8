"""Cascading model-parameter randomisation (MPRT) on a numpy ReLU network (and torch)."""

from __future__ import annotations

import numpy as np
import pytest

from xaibench.backend import Backend, ImageSpec
from xaibench.errors import ConfigError
from xaibench.metrics import MPRT, mprt_curve
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
    with pytest.raises(ConfigError, match="explain_params"):
        MPRT()(net, x, attribution)


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
