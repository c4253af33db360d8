"""Image maskers: spec parsing, exact pass-through of kept pixels, plausible fills, shap's bug."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.explain._backends import smooth_images
from xaibench.errors import ConfigError
from xaibench.explain.maskers import constant, make_masker, n_features, parse_masker_spec

ALL_SPECS = ["inpaint_telea", "inpaint_ns", "blur(3,3)"]


def mask_call(masker, keep: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Run a shap masker on one (H, W, C) image; ``keep`` is True where features are kept."""
    (out,) = masker(keep.reshape(-1), image)
    assert out.shape == (1, *image.shape)
    return out[0]


def gradient_image(shape: tuple[int, int, int]) -> np.ndarray:
    """A smooth image in [0.1, 0.9]: different linear ramps per channel."""
    h, w, c = shape
    yy, xx = np.mgrid[0:h, 0:w]
    ramps = [(xx + yy) / (h + w - 2), xx / (w - 1), 1 - yy / (h - 1),
             (xx + 2 * yy) / (w + 2 * h - 3)]
    return (0.1 + 0.8 * np.stack([ramps[i % 4] for i in range(c)], -1)).astype(np.float32)


# --- spec parsing ------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, expected", [
    ("blur", ("blur", (), {})),
    ("blur(8,8)", ("blur", (8, 8), {})),
    (" blur( 4 , 2 ) ", ("blur", (4, 2), {})),
    ("blur(kx=4, ky=2)", ("blur", (), {"kx": 4, "ky": 2})),
    ("inpaint_telea(2.5)", ("inpaint_telea", (2.5,), {})),
    ("constant(-0.5)", ("constant", (-0.5,), {})),
])
def test_parse_masker_spec(spec, expected):
    assert parse_masker_spec(spec) == expected


@pytest.mark.parametrize("spec", ["", "blur(8,8", "blur(8,,8)", "blur(a,b)", "blur(kx=1, 2)",
                                  "blur(kx=1, kx=2)", "8blur", "blur(8)(8)", None, 3])
def test_malformed_specs_raise_config_error(spec):
    with pytest.raises(ConfigError):
        make_masker(spec, (8, 8, 1))


@pytest.mark.parametrize("spec, match", [
    ("blurr(8,8)", "did you mean 'blur'"),
    ("inpaint_tela", "did you mean 'inpaint_telea'"),
    ("blur(8,8,8)", r"blur takes \(kx=8, ky=8\)"),
    ("blur(kz=3)", "kz"),
    ("blur(0,3)", "positive integer"),
    ("blur(2.5,3)", "positive integer"),
    ("inpaint_ns(-1)", "positive number"),
])
def test_bad_names_and_arguments_raise_config_error(spec, match):
    with pytest.raises(ConfigError, match=match):
        make_masker(spec, (8, 8, 1))


def test_blur_defaults_and_kernel_binding():
    assert make_masker("blur", (8, 8, 1)).kernel == (8, 8)
    assert make_masker("blur(4,2)", (8, 8, 1)).kernel == (4, 2)
    assert make_masker("blur(ky=2)", (8, 8, 1)).kernel == (8, 2)
    assert make_masker("inpaint_ns(5)", (8, 8, 1)).radius == 5.0


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_maskers_keep_shaps_image_structure(spec):
    import shap

    masker = make_masker(spec, (6, 4, 3))
    assert isinstance(masker, shap.maskers.Image)
    m = n_features((6, 4, 3))
    assert m == 6 * 4 * 3 and masker.shape == (1, m)
    # shap's axis-aligned partition tree (scipy linkage format) is what PartitionExplainer uses
    assert masker.clustering.shape == (m - 1, 4)
    assert masker.clustering[-1, 3] == m
    assert masker.fixed_background is False and masker.image_data


# --- masking correctness -----------------------------------------------------------------------
@pytest.mark.parametrize("spec", ALL_SPECS)
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_kept_features_are_returned_exactly(spec, channels):
    shape = (10, 9, channels)
    rng = np.random.default_rng(channels)
    image = rng.random(shape, dtype=np.float32)  # not smooth, not quantised to 1/255
    masker = make_masker(spec, shape)
    for fraction in (0.2, 0.5, 0.9):
        keep = rng.random(shape) > fraction  # channels of one pixel masked independently
        out = mask_call(masker, keep, image)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out[keep], image[keep])
        hidden = out[~keep]
        assert np.all(np.isfinite(hidden))
        assert hidden.min() >= image.min() - 1e-6 and hidden.max() <= image.max() + 1e-6
        assert np.any(hidden != 0)
    np.testing.assert_array_equal(mask_call(masker, np.ones(shape, bool), image), image)


@pytest.mark.parametrize("spec", ["inpaint_telea", "inpaint_ns"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_inpainting_fills_a_hole_in_a_smooth_image_near_the_truth(spec, channels):
    shape = (16, 16, channels)
    image = gradient_image(shape)
    keep = np.ones(shape, bool)
    keep[2:5, 10:13, :] = False  # the true values vary by 0.21 over the hole and its border
    out = mask_call(make_masker(spec, shape), keep, image)
    np.testing.assert_array_equal(out[keep], image[keep])
    error = np.abs(out[~keep] - image[~keep])
    assert error.max() < 0.05 and error.mean() < 0.025, (error.max(), error.mean())
    assert np.all(out[~keep] > 0.1)  # not the zeros shap's own inpainting returns


def test_inpainting_fills_only_the_hidden_channels_of_a_pixel():
    shape = (8, 8, 3)
    image = gradient_image(shape)
    keep = np.ones(shape, bool)
    keep[3:5, 3:5, 1] = False  # hide only the green channel of four pixels
    out = mask_call(make_masker("inpaint_telea", shape), keep, image)
    np.testing.assert_array_equal(out[keep], image[keep])
    assert np.abs(out[~keep] - image[~keep]).max() < 0.04


def test_inpainting_everything_hidden_gives_the_channel_means():
    shape = (8, 8, 2)
    image = smooth_images(1, shape)[0]
    out = mask_call(make_masker("inpaint_ns", shape), np.zeros(shape, bool), image)
    np.testing.assert_allclose(out, np.broadcast_to(image.mean((0, 1)), shape), rtol=1e-6)


@pytest.mark.parametrize("spec", ["inpaint_telea", "inpaint_ns"])
def test_inpainting_works_outside_the_unit_range(spec):
    """The 8-bit copy is scaled to the image's own range, so fills are affine-equivariant."""
    shape = (12, 12, 1)
    image = gradient_image(shape)
    keep = np.ones(shape, bool)
    keep[2:5, 7:10] = False
    masker = make_masker(spec, shape)
    unit = mask_call(masker, keep, image)
    wide = mask_call(masker, keep, image * 200 - 50)  # values in [-30, 130]
    np.testing.assert_array_equal(wide[keep], (image * 200 - 50)[keep])
    np.testing.assert_allclose(wide[~keep], unit[~keep] * 200 - 50, atol=1e-3)


def test_blur_fills_hidden_pixels_with_the_blurred_image():
    import cv2

    shape = (12, 10, 3)
    image = smooth_images(1, shape, seed=3)[0]
    keep = np.random.default_rng(0).random(shape) > 0.5
    out = mask_call(make_masker("blur(3,5)", shape), keep, image)
    blurred = cv2.blur(image, (3, 5))
    np.testing.assert_array_equal(out[keep], image[keep])
    np.testing.assert_allclose(out[~keep], blurred[~keep], rtol=1e-6)
    assert np.abs(out[~keep] - image[~keep]).max() < 0.2  # smooth image: blur stays close


def test_per_image_cache_follows_the_image():
    shape = (8, 8, 1)
    images = smooth_images(2, shape)
    keep = np.zeros(shape, bool)
    keep[:4] = True
    for spec in ALL_SPECS:
        masker = make_masker(spec, shape)
        first = mask_call(masker, keep, images[0])
        second = mask_call(masker, keep, images[1])
        fresh = mask_call(make_masker(spec, shape), keep, images[1])
        np.testing.assert_array_equal(second, fresh)
        images[1][:] = images[0]  # the same buffer with new content must not reuse the cache
        np.testing.assert_array_equal(mask_call(masker, keep, images[1]), first)


def test_constant_masker():
    shape = (4, 4, 1)
    image = smooth_images(1, shape)[0]
    keep = np.zeros(shape, bool)
    keep[0] = True
    out = mask_call(constant(shape, 0.25), keep, image)
    np.testing.assert_array_equal(out[keep], image[keep])
    assert np.all(out[~keep] == 0.25)
    with pytest.raises(ConfigError):
        constant(shape, float("nan"))


@pytest.mark.parametrize("method", ["inpaint_telea", "inpaint_ns"])
def test_shaps_own_inpainting_zeroes_float_images(method):
    """Why our maskers exist: shap casts the image to uint8, so [0, 1) floats become 0."""
    import shap

    shape = (8, 8, 1)
    image = np.clip(gradient_image(shape), 0, 0.99)
    keep = np.ones(shape, bool)
    keep[2:5, 2:5] = False
    (raw,) = shap.maskers.Image(method, shape)(keep.reshape(-1), image)
    assert np.all(raw == 0), "shap fixed its inpainting cast: revisit xaibench's InpaintMasker"
    fixed = mask_call(make_masker(method, shape), keep, image)
    np.testing.assert_array_equal(fixed[keep], image[keep])
    assert np.all(fixed > 0)
