"""Gradient-based explainers, computed by each backend with its own framework."""

from __future__ import annotations

import numpy as np

from xaibench.backend import Backend
from xaibench.errors import ConfigError


def deep(backend: Backend, x: np.ndarray, output_indices: np.ndarray, *,
         background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeepLIFT (rescale rule) against ``background`` images, as shap's DeepExplainer."""
    return backend.native_explain("deep", x, output_indices, background=background)


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
