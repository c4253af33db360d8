"""Explainers each backend computes with its own framework: gradient methods, class activation
maps and TreeSHAP."""

from __future__ import annotations

from typing import Literal

import numpy as np

from xaibench.backend import Backend
from xaibench.errors import ConfigError


def deep(backend: Backend, x: np.ndarray, output_indices: np.ndarray, *,
         background: np.ndarray, check_additivity: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """DeepLIFT (rescale rule) against ``background`` images, as shap's DeepExplainer.

    Backends that declare ``check_additivity`` (torch, flax) raise UnsupportedModelError when
    the attributions do not sum to f(x) - E[f(background)]; ``check_additivity=False`` keeps
    such attributions, so that the additivity metric measures how far off they are (e.g. a
    torch model with functional ``F.relu``). Other backends do not check.
    """
    checks = "check_additivity" in backend.native_methods.get("deep", ())
    return backend.native_explain("deep", x, output_indices, background=background,
                                  **({"check_additivity": check_additivity} if checks else {}))


def gradient(backend: Backend, x: np.ndarray, output_indices: np.ndarray, *,
             background: np.ndarray, nsamples: int = 200, local_smoothing: float = 0.0,
             seed: int = 0, layer: str | int | None = None) -> tuple[np.ndarray, ...]:
    """Expected gradients against ``background`` images, as shap's GradientExplainer.

    With ``layer`` (a name or index) the model output is attributed to that intermediate
    layer's activations; backends that cannot do this raise ConfigError.
    """
    if int(nsamples) < 1:
        raise ConfigError(f"explainer 'gradient': nsamples must be >= 1, got {nsamples}")
    return backend.native_explain("gradient", x, output_indices, background=background,
                                  nsamples=nsamples, local_smoothing=local_smoothing, seed=seed,
                                  layer=layer)


def cam(backend: Backend, x: np.ndarray, output_indices: np.ndarray, *,
        layer: str | int | None = None) -> tuple[np.ndarray, ...]:
    """CAM (Zhou et al. 2016) for models ending in conv -> global average pooling -> dense.

    ``layer`` names (or indexes) a convolution layer, by default the last one; the map
    Σ_k w_k^c A^k is upsampled bilinearly to the image and repeated over its channels; base
    values are 0 (not additive). Other models raise ConfigError suggesting 'gradcam'.
    Computed by the backend (``backends._cam``).
    """
    return backend.native_explain("cam", x, output_indices, layer=layer)


def gradcam(backend: Backend, x: np.ndarray, output_indices: np.ndarray, *,
            layer: str | int | None = None) -> tuple[np.ndarray, ...]:
    """Grad-CAM (Selvaraju et al. 2017) at a convolution ``layer`` (default: the last one):
    ReLU(Σ_k α_k A^k) with α_k the spatial mean of ∂score/∂A^k, upsampled as :func:`cam`."""
    return backend.native_explain("gradcam", x, output_indices, layer=layer)


def gradcam_pp(backend: Backend, x: np.ndarray, output_indices: np.ndarray, *,
               layer: str | int | None = None) -> tuple[np.ndarray, ...]:
    """Grad-CAM++ (Chattopadhay et al. 2018), the closed-form weights for an exponential score
    from the first-order gradients, at a convolution ``layer``; upsampled as :func:`cam`."""
    return backend.native_explain("gradcam_pp", x, output_indices, layer=layer)


def tree(backend: Backend, x: np.ndarray, output_indices: np.ndarray, *,
         background: np.ndarray,
         feature_perturbation: Literal["interventional", "tree_path_dependent"]
         = "interventional") -> tuple[np.ndarray, np.ndarray]:
    """Exact TreeSHAP of a tree ensemble (shap's TreeExplainer), in the model's output space.

    ``interventional`` (default) explains against the ``background`` rows, the same game as
    the model-agnostic explainers with an independent masker; ``tree_path_dependent`` uses
    the trees' training cover instead (the background is then unused).
    """
    return backend.native_explain("tree", x, output_indices, background=background,
                                  feature_perturbation=feature_perturbation)
