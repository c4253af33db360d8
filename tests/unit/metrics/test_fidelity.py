"""Faithfulness correlation and infidelity: closed forms on a linear model, hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest

from xaibench.backend import Attribution
from xaibench.errors import ConfigError
from xaibench.metrics import FaithfulnessCorrelation, Infidelity, removal_effects


def _exact(linear, x):
    """φ = w ⊙ (x − 0): exact SHAP against the zero image, the fill of replacement='zero'."""
    return linear.explain("deep", x, 2, background=np.zeros((1, *linear.spec.shape)))


def _with_values(attribution: Attribution, values: np.ndarray) -> Attribution:
    return Attribution(attribution.method, values, attribution.output_indices,
                       attribution.base_values, attribution.model_outputs, 0.0, 0, {})


def test_removal_effects_of_a_linear_model_are_the_attribution_mass(linear, images):
    x = images(3, linear.spec.shape)
    attribution = _exact(linear, x)
    removed = np.random.default_rng(0).random((3, 5, 6, 6)) < 0.3
    mass, drops = removal_effects(linear, x, attribution, removed, replacement="zero")
    assert mass.shape == drops.shape == (3, 2, 5)
    # hand-computed: Δf_k(S) = Σ_{pixels in S} Σ_c w_k x
    w = linear.weights.T.reshape(4, 6, 6, 3)
    expected = np.einsum("nkhwc,nhwc,nshw->nks", w[attribution.output_indices], x, removed)
    np.testing.assert_allclose(drops, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mass, expected, rtol=1e-5, atol=1e-5)


def test_exact_linear_attribution_has_correlation_one_and_infidelity_zero(linear, images):
    x = images(4, linear.spec.shape, seed=1)
    attribution = _exact(linear, x)
    correlation = FaithfulnessCorrelation(replacement="zero", n_draws=20)(linear, x, attribution)
    np.testing.assert_allclose(correlation, 1.0, atol=1e-6)
    for normalise in (True, False):
        gap = Infidelity(square=2, replacement="zero", normalise=normalise)(linear, x, attribution)
        assert gap.shape == (4, 2)
        np.testing.assert_allclose(gap, 0.0, atol=1e-8)
    # a scaled map: correlation and normalised infidelity ignore the scale, raw infidelity not
    scaled = _with_values(attribution, 3.0 * attribution.values)
    np.testing.assert_allclose(
        FaithfulnessCorrelation(replacement="zero", n_draws=20)(linear, x, scaled), 1.0,
        atol=1e-6)
    np.testing.assert_allclose(Infidelity(square=2, replacement="zero")(linear, x, scaled), 0.0,
                               atol=1e-8)
    raw = Infidelity(square=2, replacement="zero", normalise=False)
    mass, drops = removal_effects(linear, x, attribution, raw._draw(
        np.random.default_rng(0), 4, 6, 6), replacement="zero")
    np.testing.assert_allclose(raw(linear, x, scaled), ((2.0 * drops) ** 2).mean(-1), rtol=1e-5)


def test_sign_flipped_and_constant_maps(linear, images):
    x = images(2, linear.spec.shape, seed=2)
    attribution = _exact(linear, x)
    metric = FaithfulnessCorrelation(replacement="zero", n_draws=20)
    flipped = _with_values(attribution, -attribution.values)
    np.testing.assert_allclose(metric(linear, x, flipped), -1.0, atol=1e-6)
    constant = _with_values(attribution, np.ones_like(attribution.values))
    assert np.isnan(metric(linear, x, constant)).all()  # every set has the same mass
    zero = _with_values(attribution, np.zeros_like(attribution.values))
    assert np.isnan(Infidelity(replacement="zero")(linear, x, zero)).all()


def test_squares_and_subsets_have_the_declared_size():
    subsets = FaithfulnessCorrelation(subset_fraction=0.25, n_draws=7)._draw(
        np.random.default_rng(0), 3, 4, 5)
    assert subsets.shape == (3, 7, 4, 5) and (subsets.sum(axis=(2, 3)) == 5).all()
    squares = Infidelity(square=3, n_draws=50)._draw(np.random.default_rng(0), 2, 4, 5)
    assert (squares.sum(axis=(2, 3)) == 9).all()
    rows, cols = squares.any(axis=3), squares.any(axis=2)
    assert (rows.sum(-1) == 3).all() and (cols.sum(-1) == 3).all()
    assert squares[..., 0, 0].any() and squares[..., -1, -1].any()  # corners reachable


def test_draws_follow_the_seed(linear, images):
    x = images(2, linear.spec.shape, seed=3)
    noisy = linear.explain("random", x, 1, seed=0)
    first, again, other = (FaithfulnessCorrelation(seed=s, replacement="mean")(linear, x, noisy)
                           for s in (5, 5, 6))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("make, message", [
    (lambda: FaithfulnessCorrelation(subset_fraction=1.0), "subset_fraction"),
    (lambda: FaithfulnessCorrelation(n_draws=1), "n_draws"),
    (lambda: Infidelity(square=0), "square"),
    (lambda: Infidelity(space="logit"), "space"),
    (lambda: Infidelity(replacement="blurr"), "blur"),
])
def test_bad_parameters_are_config_errors(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_square_larger_than_the_image_is_a_config_error(linear, images):
    x = images(1, linear.spec.shape)
    with pytest.raises(ConfigError, match="square <= 6"):
        Infidelity(square=7, replacement="zero")(linear, x, _exact(linear, x))

