"""The edge-detector baseline: a hand-computed 3×3 Sobel magnitude, no model involved."""

from __future__ import annotations

import numpy as np

from xaibench.backend import ImageSpec
from xaibench.registry import explainers
from xaibench.testing import LinearBackend

SPEC = ImageSpec(shape=(3, 3, 2), class_names=("a", "b", "c"))


def test_sobel_magnitude_by_hand():
    backend = LinearBackend.from_zoo("linear", SPEC, seed=0)
    channel = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 1]], np.float32) / 2
    x = np.stack([channel, 2 * channel], axis=-1)[None]  # second channel: twice the first
    attribution = backend.explain("edge", x, 2)
    # centre: right column − left column, rows weighted 1 2 1: (0 + 2 + 1)/2 − 0 = 1.5, and the
    # same for bottom row − top row, so |G| = 1.5·√2. Borders replicate the edge pixels: the
    # bottom-right corner sees rows (1, 2, 2) and columns (1, 2, 2): Gx = Gy = (4 − 3)/2.
    # The top-left corner sees only zeros.
    expected = np.zeros((3, 3))
    expected[1, 1], expected[2, 2], expected[0, 0] = 1.5 * np.sqrt(2), 0.5 * np.sqrt(2), 0.0
    values = attribution.values[0]
    np.testing.assert_allclose(values[..., 0, 0][[1, 2, 0], [1, 2, 0]],
                               expected[[1, 2, 0], [1, 2, 0]], atol=1e-12)
    np.testing.assert_allclose(values[..., 1, :], 2 * values[..., 0, :])  # per channel
    np.testing.assert_array_equal(values[..., 0], values[..., 1])  # same map for every output
    np.testing.assert_allclose(attribution.base_values, attribution.model_outputs)


def test_the_map_ignores_the_model():
    x = np.random.default_rng(0).uniform(0, 1, (2, *SPEC.shape)).astype(np.float32)
    one, other = (LinearBackend.from_zoo("linear", SPEC, seed=s) for s in (0, 1))
    np.testing.assert_array_equal(one.explain("edge", x, 1).values,
                                  other.explain("edge", x, 1).values)
    assert explainers.entry("edge").consumes == frozenset()
    flat = np.full((1, *SPEC.shape), 0.3, np.float32)
    np.testing.assert_array_equal(one.explain("edge", flat, 1).values, 0.0)
    # each image and channel on its own: a second image or channel does not leak into the map
    alone = one.explain("edge", x[:1, ..., :1].repeat(2, axis=-1), 1).values
    np.testing.assert_allclose(one.explain("edge", x, 1).values[:1, ..., :1, :],
                               alone[..., :1, :])
