"""Class activation maps -- CAM, Grad-CAM, Grad-CAM++ -- shared by the three backends.

A backend supplies three framework-specific primitives (:class:`ClassActivationMaps`): the names
of its convolution layers, the activations A (N, h, w, c) of one of them together with the
gradients of the explained scores with respect to them, and the model's scores for given
activations of that layer (the "head"). The maps are computed here, in numpy:

- Grad-CAM (Selvaraju et al. 2017): α_k = mean over positions of ∂y^c/∂A^k,
  map = ReLU(Σ_k α_k A^k);
- Grad-CAM++ (Chattopadhay et al. 2018), the closed form for an exponential score: with the
  gradients g, a_ij^k = g² / (2 g² + Σ_ab A_ab^k g³) (0 where g = 0),
  w_k = Σ_ij a_ij^k ReLU(g_ij^k), map = ReLU(Σ_k w_k A^k);
- CAM (Zhou et al. 2016), for models ending in conv -> global average pooling -> dense:
  map = Σ_k w_k^c A^k without ReLU. Computed as h·w·Σ_k g^k A^k, which equals it exactly for
  such a head (g^k = w_k^c / (h·w) where a ReLU between the layer and the pooling passes, and
  ReLU'(a)·a = ReLU(a)); the head is checked to be one (:func:`check_pooled_dense_head`).

y^c is the model's score as ``predict`` returns it (logits for the zoo CNNs, probabilities for a
model that ends in a softmax). The layer is the last convolution layer unless ``layer`` names
another (or indexes the convolution layers). Maps are upsampled bilinearly to the image's
H x W (:func:`bilinear_matrix`: half-pixel centres, as ``tf.image.resize``) and the same value
is given to every input channel: the attribution has the image's shape (N, H, W, C) per
explained output. Base values are 0: a map is a relevance score per pixel, not a decomposition
of f(x) − reference, so the explainers are registered as not additive.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from backends._shap_native import bilinear_matrix
from xaibench.errors import ConfigError
from xaibench.registry import did_you_mean

#: Grad-CAM++ denominator guard (the value the reference implementations use)
GRADCAM_PP_EPS = 1e-7


def gradcam_map(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM maps (N, h, w, K) of activations (N, h, w, c) and gradients (N, h, w, c, K)."""
    alpha = gradients.mean(axis=(1, 2))  # (N, c, K)
    return np.maximum(np.einsum("nhwc,nck->nhwk", activations, alpha), 0.0)


def gradcam_pp_map(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM++ maps (N, h, w, K) of activations (N, h, w, c) and gradients (N, h, w, c, K)."""
    squared = gradients ** 2
    summed = activations.sum(axis=(1, 2))[:, None, None, :, None]  # Σ_ab A_ab^k
    denominator = 2 * squared + summed * gradients ** 3 + GRADCAM_PP_EPS
    alpha = np.where(gradients != 0, squared / denominator, 0.0)
    weights = (alpha * np.maximum(gradients, 0.0)).sum(axis=(1, 2))  # (N, c, K)
    return np.maximum(np.einsum("nhwc,nck->nhwk", activations, weights), 0.0)


def cam_map(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """CAM maps (N, h, w, K) Σ_k w_k^c A^k, for a head checked to be pooling -> dense."""
    height, width = activations.shape[1:3]
    return height * width * np.einsum("nhwc,nhwck->nhwk", activations, gradients)


def check_pooled_dense_head(layer: str, activations: np.ndarray, gradients: np.ndarray,
                            head: Callable[[np.ndarray], np.ndarray],
                            output_indices: np.ndarray) -> None:
    """Raise ConfigError unless the model after ``layer`` is global average pooling -> dense.

    ``head(a)`` are the scores (N, classes) for activations ``a``. Such a head (with at most a ReLU
    before the pooling) ignores where a value is -- the scores stay when the positions are
    shuffled -- and its first-order expansion is exact: y = head(0) + Σ g·A, which is what
    CAM's maps add up to.
    """
    scores = head(activations)
    scale = 1.0 + float(np.abs(scores).max(initial=0.0))
    tol = 1e-3 * scale
    n, height, width, channels = activations.shape
    shuffled = np.random.default_rng(0).permutation(height * width)
    moved = activations.reshape(n, height * width, channels)[:, shuffled].reshape(
        activations.shape)
    if np.abs(head(moved) - scores).max(initial=0.0) > tol:
        raise ConfigError(
            f"explainer 'cam' needs a model that ends in convolution -> global average pooling "
            f"-> dense, but the scores change when the positions of layer '{layer}' are "
            f"shuffled (flattened or further convolved, not pooled); use 'gradcam', which "
            f"works for any CNN")
    bias = head(np.zeros((1, height, width, channels)))[0][output_indices]
    expected = np.take_along_axis(scores, output_indices, axis=1) - bias
    if np.abs(np.einsum("nhwck,nhwc->nk", gradients, activations) - expected).max() > tol:
        raise ConfigError(
            f"explainer 'cam' needs a model that ends in convolution -> global average pooling "
            f"-> dense (at most a ReLU in between), but the scores are not linear in the pooled "
            f"activations of layer '{layer}' (a hidden layer or a softmax after the pooling?); "
            f"use 'gradcam', which works for any CNN")


def to_image(maps: np.ndarray, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Maps (N, h, w, K) upsampled bilinearly to (N, H, W, C, K), equal over the C channels."""
    height, width, channels = image_shape
    rows, cols = bilinear_matrix(height, maps.shape[1]), bilinear_matrix(width, maps.shape[2])
    rows = rows / rows.sum(axis=1, keepdims=True)
    cols = cols / cols.sum(axis=1, keepdims=True)
    image = np.einsum("Hh,nhwk,Ww->nHWk", rows, maps, cols)
    return np.repeat(image[:, :, :, None, :], channels, axis=3)


_MAPS = {"cam": cam_map, "gradcam": gradcam_map, "gradcam_pp": gradcam_pp_map}

#: the keyword params of the three explainers (a backend's ``native_methods`` entries)
CAM_METHODS: dict[str, tuple[str, ...]] = {name: ("layer",) for name in _MAPS}


class ClassActivationMaps:
    """``_native_cam``, ``_native_gradcam`` and ``_native_gradcam_pp`` for a :class:`Backend`
    that implements the three primitives below (and lists :data:`CAM_METHODS` in its
    ``native_methods``)."""

    spec: Any

    def _conv_layer_names(self) -> list[str]:
        """The model's 2-D convolution layers, in the order the forward pass calls them."""
        raise NotImplementedError

    def _layer_gradients(self, x: np.ndarray, output_indices: np.ndarray,
                         layer: str) -> tuple[np.ndarray, np.ndarray]:
        """(activations (N, h, w, c), gradients (N, h, w, c, K)) of convolution ``layer`` for
        the scores ``output_indices`` (N, K) of checked images ``x``; counts the images."""
        raise NotImplementedError

    def _layer_head(self, layer: str, activations: np.ndarray) -> np.ndarray:
        """Scores (N, classes) with ``layer``'s output replaced by ``activations``; not
        counted as evaluations."""
        raise NotImplementedError

    def _conv_layer(self, layer: str | int | None) -> str:
        """The convolution layer named (or indexed) by ``layer``; the last one for None."""
        names = self._conv_layer_names()
        if not names:
            raise ConfigError("class activation maps need a convolution layer and this model "
                              "has none; use 'gradient', 'partition' or 'permutation'")
        if layer is None:
            return names[-1]
        if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
            if not -len(names) <= int(layer) < len(names):
                raise ConfigError(f"layer index {layer} out of range for the convolution layers "
                                  f"{names}")
            return names[int(layer)]
        if layer not in names:
            raise ConfigError(f"unknown convolution layer '{layer}'{did_you_mean(layer, names)} "
                              f"(convolution layers: {', '.join(names)})")
        return str(layer)

    def _class_activation_map(self, method: str, x: np.ndarray, output_indices: np.ndarray,
                              layer: str | int | None) -> tuple[np.ndarray, np.ndarray]:
        name = self._conv_layer(layer)
        activations, gradients = self._layer_gradients(x, output_indices, name)
        activations = activations.astype(np.float64)
        gradients = gradients.astype(np.float64)
        if method == "cam":
            check_pooled_dense_head(name, activations, gradients,
                                    lambda a: self._layer_head(name, a), output_indices)
        maps = _MAPS[method](activations, gradients)
        return to_image(maps, self.spec.shape), maps[:, :, :, None, :]

    def _native_cam(self, x: np.ndarray, output_indices: np.ndarray, background: None, *,
                    layer: str | int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """CAM (Zhou et al. 2016) at ``layer`` (default: the last convolution)."""
        return self._class_activation_map("cam", x, output_indices, layer)

    def _native_gradcam(self, x: np.ndarray, output_indices: np.ndarray, background: None, *,
                        layer: str | int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Grad-CAM (Selvaraju et al. 2017) at ``layer`` (default: the last convolution)."""
        return self._class_activation_map("gradcam", x, output_indices, layer)

    def _native_gradcam_pp(self, x: np.ndarray, output_indices: np.ndarray, background: None,
                           *, layer: str | int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Grad-CAM++ (Chattopadhay et al. 2018) at ``layer`` (default: the last convolution)."""
        return self._class_activation_map("gradcam_pp", x, output_indices, layer)
