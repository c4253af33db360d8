"""Inpainting only the hole's neighbourhood gives the pixels of inpainting the whole image."""

from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")


def full_image_inpaint(u8: np.ndarray, hole: np.ndarray, radius: float, flag: int) -> np.ndarray:
    """The reference: cv2.inpaint on the whole image, per channel when it has 2 or > 3."""
    if u8.shape[-1] in (1, 3):
        return np.asarray(cv2.inpaint(u8, hole, radius, flag)).reshape(u8.shape)
    return np.stack([cv2.inpaint(np.ascontiguousarray(u8[..., c]), hole, radius, flag)
                     for c in range(u8.shape[-1])], axis=-1)


@pytest.mark.parametrize("method", ["telea", "ns"])
@pytest.mark.parametrize("radius", [1.0, 2.5, 3.0, 5.5])
def test_cropped_inpainting_is_identical_to_full_image_inpainting(method, radius):
    from xaibench.explain._image_maskers import InpaintMasker

    rng = np.random.default_rng(int(radius * 10))
    for trial in range(60):
        height, width = (int(v) for v in rng.integers(6, 36, 2))
        channels = (1, 3, 2)[trial % 3]
        masker = InpaintMasker((height, width, channels), method, radius)
        noise = rng.random((height, width, channels)) * 255
        u8 = np.ascontiguousarray(cv2.blur(noise, (3, 3)).reshape(noise.shape).astype(np.uint8))
        hole = np.zeros((height, width), np.uint8)
        for _ in range(int(rng.integers(1, 4))):  # a few rectangles, often at the border
            r, c = rng.integers(0, height), rng.integers(0, width)
            hole[r:r + rng.integers(1, 9), c:c + rng.integers(1, 9)] = 1
        expected = full_image_inpaint(u8, hole, radius, masker._flag)
        np.testing.assert_array_equal(masker._inpaint_u8(u8, hole), expected)


def test_an_empty_hole_leaves_the_image_as_it_is():
    from xaibench.explain._image_maskers import InpaintMasker

    u8 = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    out = InpaintMasker((4, 4, 3), "telea")._inpaint_u8(u8, np.zeros((4, 4), np.uint8))
    np.testing.assert_array_equal(out, u8)
