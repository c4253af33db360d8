"""Max-sensitivity on the linear model, whose exact explanation moves by W ⊙ δ under noise δ."""

from __future__ import annotations

import numpy as np
import pytest

from xaibench.errors import ConfigError
from xaibench.metrics import MaxSensitivity


@pytest.fixture
def setup(linear):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.3, 0.7, (3, *linear.spec.shape)).astype(np.float32)  # no clipping
    params = {"background": np.zeros((1, *linear.spec.shape), np.float32)}
    return x, params, linear.explain("deep", x, 2, **params)


def capture_explain(backend, monkeypatch) -> list:
    """Record every backend.explain call as (method, images, targets, params)."""
    calls = []
    explain = backend.explain
    monkeypatch.setattr(backend, "explain", lambda method, xs, targets, **kw:
                        calls.append((method, xs, targets, kw)) or explain(method, xs, targets,
                                                                            **kw))
    return calls


def test_exact_explanation_moves_by_the_weights_times_the_noise(linear, setup, monkeypatch):
    x, params, attribution = setup
    radius = 0.05
    calls = capture_explain(linear, monkeypatch)
    score = MaxSensitivity(radius=radius, n_samples=8)(linear, x, attribution,
                                                       explain_params=params)
    assert score.shape == (3, 2)
    # r(x + δ) − r(x) = Σ_c W_c δ_c per pixel (r = Σ_c φ), with δ the noise actually drawn
    delta = (calls[0][1].astype(np.float64).reshape(8, *x.shape) - x).reshape(8, 3, 1, 36, 3)
    w = linear.weights.T[attribution.output_indices].reshape(3, 2, 36, 3)
    moved = (w * delta).sum(axis=-1)  # (8, 3, 2, 36)
    r = np.moveaxis(attribution.values.sum(axis=3).reshape(3, 36, 2), 1, -1)  # (3, 2, 36)
    change, norm = np.linalg.norm(moved, axis=-1), np.linalg.norm(r, axis=-1)
    larger = np.maximum(norm, np.linalg.norm(r + moved, axis=-1))
    np.testing.assert_allclose(score, (change / larger).max(axis=0), rtol=1e-6)
    assert np.all(score <= radius * np.linalg.norm(np.abs(w).sum(-1), axis=-1) / norm)
    # Yeh et al.'s ‖r(x + δ) − r(x)‖ / ‖r(x)‖ bounds it: ‖r(x + δ)‖ ≤ ‖r(x)‖ + change, so
    # yeh / (1 + yeh) ≤ score ≤ yeh — the same to first order for small noise
    yeh = change.max(axis=0) / norm
    assert np.all(score <= yeh * (1 + 1e-9)) and np.all(score >= yeh / (1 + yeh) * (1 - 1e-9))
    doubled = MaxSensitivity(radius=2 * radius, n_samples=8)(linear, x, attribution,
                                                             explain_params=params)
    np.testing.assert_allclose(doubled, 2 * score, rtol=0.1)  # measured: within 3 %


def test_bounded_where_the_explanation_of_x_is_nearly_zero(linear, monkeypatch):
    # an explanation of norm 1e-9 on x that moves to norm 1 under noise: Yeh et al.'s ratio
    # would be 1e9; the relative change to the larger norm stays within [0, 2]
    x = np.full((1, *linear.spec.shape), 0.5, np.float32)
    params = {"background": np.zeros((1, *linear.spec.shape), np.float32)}
    attribution = linear.explain("deep", x, 1, **params)
    tiny = type(attribution)(**{**vars(attribution), "values": attribution.values * 1e-9})
    score = MaxSensitivity(radius=0.05, n_samples=4)(linear, x, tiny, explain_params=params)
    assert 0.99 < score.item() <= 2.0
    zero = type(attribution)(**{**vars(attribution), "values": attribution.values * 0.0})
    assert np.isnan(MaxSensitivity()(linear, x, zero, explain_params=params)).all()


def test_one_explain_call_on_noisy_images_within_range(linear, setup, monkeypatch):
    x, params, attribution = setup
    x = x.copy()
    x[0] = 1.0  # at the top of the value range: noise must be clipped
    attribution = linear.explain("deep", x, 2, **params)
    calls = capture_explain(linear, monkeypatch)
    MaxSensitivity(radius=0.1, n_samples=4)(linear, x, attribution, explain_params=params)
    ((method, noisy, targets, kwargs),) = calls
    assert method == "deep" and kwargs.keys() == {"background"}
    assert noisy.shape == (4 * 3, *x.shape[1:]) and noisy.min() >= 0 and noisy.max() <= 1
    np.testing.assert_array_equal(targets, np.tile(attribution.output_indices, (4, 1)))
    assert np.abs(noisy.reshape(4, *x.shape) - x).max() <= 0.1 + 1e-6
    assert not np.allclose(noisy[:3], x)


def test_needs_the_full_explain_params(linear, setup):
    x, _, attribution = setup
    with pytest.raises(ConfigError, match="explain_params"):
        MaxSensitivity()(linear, x, attribution)
    for kwargs in ({"radius": 0}, {"n_samples": 0}):
        with pytest.raises(ConfigError):
            MaxSensitivity(**kwargs)
