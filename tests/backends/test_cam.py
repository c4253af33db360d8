"""CAM, Grad-CAM and Grad-CAM++ against maps computed by hand, in all three frameworks.

The tiny model: one 3x3 SAME convolution (1 -> 2 channels) with fixed weights on a 4x4 grey
image, optionally a ReLU, global average pooling and a dense layer (2 classes). Activations,
gradients and maps are computed here with plain numpy loops.
"""

from __future__ import annotations

import numpy as np
import pytest

from xaibench import ImageSpec
from xaibench.errors import ConfigError

SPEC = ImageSpec(shape=(4, 4, 1), class_names=("a", "b"))
RNG = np.random.default_rng(7)
WEIGHTS = {"conv": {"kernel": RNG.normal(size=(3, 3, 1, 2)).astype(np.float32),
                    "bias": np.array([-0.4, 0.3], np.float32)},
           "dense": {"kernel": np.array([[1.5, -0.7], [-0.8, 1.2]], np.float32),
                     "bias": np.array([0.1, -0.2], np.float32)}}
X = RNG.random((3, 4, 4, 1)).astype(np.float32)
TARGETS = np.array([[0, 1], [1, 0], [1, 1]])


def _conv(x: np.ndarray) -> np.ndarray:
    """The convolution's output (N, 4, 4, 2) by explicit sums over the zero-padded 3x3
    neighbourhood."""
    kernel, bias = WEIGHTS["conv"]["kernel"].astype(np.float64), WEIGHTS["conv"]["bias"]
    padded = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((len(x), 4, 4, 2))
    for n in range(len(x)):
        for i in range(4):
            for j in range(4):
                for k in range(2):
                    out[n, i, j, k] = (padded[n, i:i + 3, j:j + 3, 0] * kernel[:, :, 0, k]).sum() \
                        + bias[k]
    return out


def _hand(relu: bool) -> tuple[np.ndarray, np.ndarray]:
    """(activations A of the convolution (N, 4, 4, 2), gradients ∂y^c/∂A (N, 4, 4, 2, K)) for
    y = dense(mean over positions of (ReLU)(A)): W[k, c] / 16 where the ReLU passes, else 0."""
    a = _conv(X)
    passes = (a > 0) if relu else np.ones_like(a, bool)
    dense = WEIGHTS["dense"]["kernel"].astype(np.float64)
    grads = np.zeros((*a.shape, TARGETS.shape[1]))
    for n in range(len(X)):
        for slot, cls in enumerate(TARGETS[n]):
            grads[n, ..., slot] = dense[:, cls] / 16 * passes[n]
    return a, grads


def _hand_gradcam(a: np.ndarray, grads: np.ndarray) -> np.ndarray:
    maps = np.zeros((len(a), 4, 4, grads.shape[-1]))
    for n in range(len(a)):
        for slot in range(grads.shape[-1]):
            alpha = [grads[n, :, :, k, slot].mean() for k in range(2)]
            maps[n, :, :, slot] = np.maximum(sum(alpha[k] * a[n, :, :, k] for k in range(2)), 0)
    return maps


def _hand_gradcam_pp(a: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Grad-CAM++ as in Chattopadhay et al. 2018, eq. 19 with exp(score): first-order
    gradients squared over (2 g² + Σ_ab A_ab g³), zero where g is zero."""
    maps = np.zeros((len(a), 4, 4, grads.shape[-1]))
    for n in range(len(a)):
        for slot in range(grads.shape[-1]):
            total = np.zeros((4, 4))
            for k in range(2):
                g, s = grads[n, :, :, k, slot], a[n, :, :, k].sum()
                weight = 0.0
                for i in range(4):
                    for j in range(4):
                        if g[i, j] != 0:
                            alpha = g[i, j] ** 2 / (2 * g[i, j] ** 2 + s * g[i, j] ** 3 + 1e-7)
                            weight += alpha * max(g[i, j], 0.0)
                total += weight * a[n, :, :, k]
            maps[n, :, :, slot] = np.maximum(total, 0)
    return maps


def _hand_cam(a: np.ndarray, relu: bool) -> np.ndarray:
    features = np.maximum(a, 0) if relu else a
    dense = WEIGHTS["dense"]["kernel"].astype(np.float64)
    return np.stack([np.einsum("hwk,kc->hwc", features[n], dense)[..., TARGETS[n]]
                     for n in range(len(a))])


def _torch_tiny(relu: bool):
    pytest.importorskip("torch")
    from torch import nn

    from backends.torch_backend import TorchBackend

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)
            self.relu = nn.ReLU() if relu else nn.Identity()
            self.dense = nn.Linear(2, 2)

        def forward(self, x):
            return self.dense(self.relu(self.conv(x)).mean(dim=(2, 3)))

    return TorchBackend(Tiny(), SPEC)


def _keras_tiny(relu: bool):
    pytest.importorskip("tensorflow")
    import keras

    from backends.keras_backend import KerasBackend

    inputs = keras.Input(SPEC.shape)
    x = keras.layers.Conv2D(2, 3, padding="same", name="conv")(inputs)
    if relu:
        x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return KerasBackend(keras.Model(inputs, keras.layers.Dense(2, name="dense")(x)), SPEC)


def _flax_tiny(relu: bool):
    pytest.importorskip("flax")
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from backends.flax_backend import FlaxBackend

    class Tiny(nn.Module):
        @nn.compact
        def __call__(self, x):
            a = nn.Conv(2, (3, 3), padding="SAME", name="conv")(x)
            a = nn.relu(a) if relu else a
            return nn.Dense(2, name="dense")(a.mean(axis=(1, 2)))

    module = Tiny()
    return FlaxBackend(module, module.init(jax.random.key(0), jnp.zeros((1, *SPEC.shape))), SPEC)


BUILDERS = {"torch": _torch_tiny, "keras": _keras_tiny, "flax": _flax_tiny}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def tiny(request):
    """framework -> {relu: backend} with the fixed weights."""
    models = {}
    for relu in (True, False):
        backend = BUILDERS[request.param](relu)
        backend.set_weights(WEIGHTS)
        models[relu] = backend
    return models


def test_the_hand_computed_model_is_the_model(tiny):
    for relu, backend in tiny.items():
        a = _conv(X)
        features = np.maximum(a, 0) if relu else a
        scores = features.mean(axis=(1, 2)) @ WEIGHTS["dense"]["kernel"] + WEIGHTS["dense"]["bias"]
        np.testing.assert_allclose(backend.predict(X), scores, rtol=1e-5, atol=1e-6)
    assert (_conv(X) > 0).any() and (_conv(X) < 0).any()  # the ReLU matters


@pytest.mark.parametrize("relu", [True, False])
def test_gradcam_equals_the_hand_computed_map(tiny, relu):
    attribution = tiny[relu].explain("gradcam", X, TARGETS)
    expected = _hand_gradcam(*_hand(relu))
    np.testing.assert_allclose(attribution.layer_values[:, :, :, 0], expected, atol=1e-5)
    # the layer has the image's 4x4 resolution: upsampling is the identity, one channel
    np.testing.assert_allclose(attribution.values[:, :, :, 0], expected, atol=1e-5)
    np.testing.assert_array_equal(attribution.base_values, np.zeros(TARGETS.shape))
    assert attribution.model_evals == len(X)


@pytest.mark.parametrize("relu", [True, False])
def test_gradcam_pp_equals_the_numpy_reference(tiny, relu):
    attribution = tiny[relu].explain("gradcam_pp", X, TARGETS, layer="conv")
    np.testing.assert_allclose(attribution.values[:, :, :, 0], _hand_gradcam_pp(*_hand(relu)),
                               atol=1e-5)


@pytest.mark.parametrize("relu", [True, False])
def test_cam_equals_the_hand_computed_map(tiny, relu):
    attribution = tiny[relu].explain("cam", X, TARGETS)
    np.testing.assert_allclose(attribution.values[:, :, :, 0], _hand_cam(_conv(X), relu),
                               atol=1e-5)


def test_cam_is_gradcam_up_to_relu_and_the_pooling_factor(tiny):
    # global average pooling straight after the layer: ∂y^c/∂A^k = w_k^c / (H·W) everywhere
    cam = tiny[False].explain("cam", X, TARGETS).values
    gradcam = tiny[False].explain("gradcam", X, TARGETS).values
    np.testing.assert_allclose(gradcam, np.maximum(cam, 0) / 16, atol=1e-6)
    assert (cam < 0).any()  # the ReLU matters


def test_cam_refuses_a_model_without_global_average_pooling():
    pytest.importorskip("torch")
    from backends.torch_backend import TorchBackend

    backend = TorchBackend.from_zoo("fmnist_cnn", ImageSpec((6, 6, 1), ("a", "b")), seed=0)
    x = np.random.default_rng(0).random((2, 6, 6, 1)).astype(np.float32)
    with pytest.raises(ConfigError, match=r"ends in convolution -> global average pooling.*"
                                          r"use 'gradcam'"):
        backend.explain("cam", x, 1)
    assert backend.explain("gradcam", x, 1).values.shape == (2, 6, 6, 1, 1)


def test_a_layer_that_is_not_a_convolution_is_named_with_the_convolutions(tiny):
    with pytest.raises(ConfigError, match=r"unknown convolution layer 'conf' — did you mean "
                                          r"'conv'\? \(convolution layers: conv\)"):
        tiny[True].explain("gradcam", X, TARGETS, layer="conf")
    with pytest.raises(ConfigError, match="layer index 1 out of range"):
        tiny[True].explain("gradcam", X, TARGETS, layer=1)
    with pytest.raises(ConfigError, match="takes no background"):
        tiny[True].native_explain("gradcam", X, TARGETS, background=X)


def test_maps_of_a_coarser_layer_are_upsampled_bilinearly():
    torch = pytest.importorskip("torch")
    from backends._cam import to_image

    maps = np.random.default_rng(1).random((2, 3, 5, 2))
    values = to_image(maps, (12, 10, 3))
    reference = torch.nn.functional.interpolate(
        torch.from_numpy(maps).permute(0, 3, 1, 2), size=(12, 10), mode="bilinear",
        align_corners=False).permute(0, 2, 3, 1).numpy()
    assert values.shape == (2, 12, 10, 3, 2)
    for channel in range(3):  # the same map on every input channel
        np.testing.assert_allclose(values[:, :, :, channel], reference, atol=1e-12)
