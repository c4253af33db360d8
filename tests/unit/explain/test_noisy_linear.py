"""ROAD's noisy linear imputation: hand-computed neighbour means, renormalised at the border,
one linear system for adjacent hidden pixels, seeded noise clipped to the image's range."""

from __future__ import annotations

import numpy as np
import pytest

from xaibench.errors import ConfigError
from xaibench.explain.maskers import make_masker

from tests.unit.explain.test_maskers import mask_call

#: a 3x3 one-channel image with distinct values
IMAGE = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], np.float32)[..., None] / 10


def _imputed(hidden: list[tuple[int, int]], noise: float = 0.0) -> np.ndarray:
    masker = make_masker(f"noisy_linear({noise})", IMAGE.shape)
    keep = np.ones(IMAGE.shape, bool)
    for row, col in hidden:
        keep[row, col] = False
    return mask_call(masker, keep, IMAGE)


def test_a_hidden_centre_is_the_weighted_mean_of_its_eight_neighbours():
    out = _imputed([(1, 1)])
    direct, diagonal = (2 + 4 + 6 + 8) / 10, (1 + 3 + 7 + 9) / 10
    assert out[1, 1, 0] == pytest.approx(direct / 6 + diagonal / 12, abs=1e-7)
    kept = np.ones((3, 3), bool)
    kept[1, 1] = False
    np.testing.assert_array_equal(out[kept], IMAGE[kept])  # kept pixels exactly as they were


def test_a_hidden_corner_renormalises_the_weights_of_its_three_neighbours():
    out = _imputed([(0, 0)])
    expected = (0.2 / 6 + 0.4 / 6 + 0.5 / 12) / (1 / 6 + 1 / 6 + 1 / 12)
    assert out[0, 0, 0] == pytest.approx(expected, abs=1e-7)


def test_adjacent_hidden_pixels_are_solved_together():
    out = _imputed([(1, 0), (1, 1)])  # a = pixel (1, 0), b = pixel (1, 1): neighbours
    # a: direct .1, .7 and b, diagonal .2, .8 (weights sum to 3/6 + 2/12 = 2/3)
    # b: direct .2, .8, .6 and a, diagonal .1, .3, .7, .9 (weights sum to 1)
    system = np.array([[2 / 3, -1 / 6], [-1 / 6, 1.0]])
    rhs = np.array([(0.1 + 0.7) / 6 + (0.2 + 0.8) / 12,
                    (0.2 + 0.8 + 0.6) / 6 + (0.1 + 0.3 + 0.7 + 0.9) / 12])
    a, b = np.linalg.solve(system, rhs)
    np.testing.assert_allclose([out[1, 0, 0], out[1, 1, 0]], [a, b], atol=1e-7)


def test_noise_is_seeded_and_the_fill_stays_in_the_images_range():
    first, again = _imputed([(1, 1), (0, 0)], 0.5), _imputed([(1, 1), (0, 0)], 0.5)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, _imputed([(1, 1), (0, 0)]))
    assert first.min() >= IMAGE.min() and first.max() <= IMAGE.max()


def test_every_pixel_hidden_gives_the_channel_mean():
    masker = make_masker("noisy_linear", IMAGE.shape)
    np.testing.assert_allclose(mask_call(masker, np.zeros(IMAGE.shape, bool), IMAGE),
                               np.full(IMAGE.shape, IMAGE.mean()), atol=1e-7)


@pytest.mark.parametrize("spec, match", [
    ("noisy_linear(-1)", r"noise must be a number >= 0"),
    ("noisy_linear(0.01, -2)", r"seed must be an integer >= 0"),
    ("noisy_linaer", r"did you mean 'noisy_linear'"),
])
def test_bad_specs_are_refused(spec, match):
    with pytest.raises(ConfigError, match=match):
        make_masker(spec, IMAGE.shape)
