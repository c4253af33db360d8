"""Framework-free helpers shared by the backends' native (gradient-based) explainers.

Everything here works on numpy arrays only, so the torch, Keras and Flax backends assemble
their shap results the same way:

- :func:`explain_by_class` -- each image asks for its own output columns (top-k differ per
  image), so each distinct class is explained once, for the images that need it, and the
  results are gathered per image. shap's ``ranked_outputs`` is not used for this: with its
  default additivity check it compares the wrong columns.
- :func:`additivity_gap` -- how far DeepLIFT values miss f(x) - E[f(background)], and the
  tolerance a correct result stays within.
- :func:`spread_to_image` -- attributions at an intermediate layer's resolution brought to the
  image resolution with the total preserved exactly.
- :func:`global_numpy_rng_preserved` -- shap's GradientExplainer seeds numpy's *global* RNG.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import numpy as np


def explain_by_class(output_indices: np.ndarray,
                     explain_class: Callable[[int, np.ndarray], np.ndarray]) -> np.ndarray:
    """Attributions (N, ..., K) for per-image output columns ``output_indices`` (N, K).

    ``explain_class(cls, images)`` returns the attributions (len(images), ...) of output
    ``cls`` for the images with indices ``images``; it is called once per distinct class.
    """
    n, k = output_indices.shape
    values: np.ndarray | None = None
    for cls in np.unique(output_indices):
        rows, cols = np.nonzero(output_indices == cls)
        images = np.unique(rows)
        phi = np.asarray(explain_class(int(cls), images))
        if values is None:
            values = np.zeros((n, *phi.shape[1:], k), dtype=np.float64)
        values[rows, ..., cols] = phi[np.searchsorted(images, rows)]
    if values is None:
        raise ValueError("output_indices is empty: nothing to explain")
    return values


#: DeepLIFT additivity tolerance: max |sum(phi) - (f(x) - E[f(bg)])| must stay below
#: ``ADDITIVITY_ATOL + ADDITIVITY_RTOL * scale`` (scale = largest |output| involved). float32
#: DeepLIFT is exact to ~1e-6 relative; an unsupported operation typically misses by 1e-2 or more.
ADDITIVITY_RTOL = 1e-3
ADDITIVITY_ATOL = 1e-5


def additivity_gap(values: np.ndarray, outputs: np.ndarray,
                   expected: np.ndarray | float) -> tuple[float, float]:
    """(max |sum(phi) - (f(x) - E[f(bg)])|, tolerance) of DeepLIFT ``values`` (N, ..., K).

    ``outputs`` are the model outputs f(x) (N, K), ``expected`` the mean outputs over the
    background, broadcastable to (N, K).
    """
    outputs = np.asarray(outputs, np.float64)
    expected = np.asarray(expected, np.float64)
    totals = np.asarray(values, np.float64).reshape(len(outputs), -1, outputs.shape[-1]).sum(1)
    gap = float(np.abs(totals - (outputs - expected)).max())
    scale = max(float(np.abs(outputs).max()), float(np.abs(expected).max()))
    return gap, ADDITIVITY_ATOL + ADDITIVITY_RTOL * scale


def bilinear_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) bilinear interpolation weights of ``tf.image.resize`` (half-pixel centres,
    edge clamping; a triangle filter widened by the scale factor when shrinking, so that every
    input cell reaches some output pixel). Upsampling rows sum to 1."""
    scale = n_in / n_out
    centres = (np.arange(n_out) + 0.5) * scale - 0.5
    if scale < 1:
        centres = np.clip(centres, 0, n_in - 1)
    distance = np.abs(centres[:, None] - np.arange(n_in)[None, :]) / max(scale, 1.0)
    return np.clip(1.0 - distance, 0.0, None)


def _spread_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) bilinear weights whose columns sum to 1 (each input cell's mass is kept):
    :func:`bilinear_matrix` with its columns normalised."""
    weights = bilinear_matrix(n_out, n_in)
    return weights / weights.sum(axis=0, keepdims=True)


def spread_to_image(layer_values: np.ndarray, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Layer attributions (N, h, w, c, K) -> image attributions (N, H, W, C, K).

    The layer's channels are summed, the (h, w) map is spread bilinearly over the H x W pixels
    (every layer cell distributes its value with bilinear weights that sum to one), and each
    pixel's share is split equally over the C input channels. The sum over all values is kept
    exactly, so ``values.sum() + base == model output`` holds as well for the image-resolution
    values as for the layer values.
    """
    height, width, channels = image_shape
    per_cell = np.asarray(layer_values, np.float64).sum(axis=3)  # (N, h, w, K)
    rows = _spread_matrix(height, per_cell.shape[1])
    cols = _spread_matrix(width, per_cell.shape[2])
    image = np.einsum("Hh,nhwk,Ww->nHWk", rows, per_cell, cols) / channels
    return np.repeat(image[:, :, :, None, :], channels, axis=3)


@contextlib.contextmanager
def global_numpy_rng_preserved() -> Iterator[None]:
    """Restore numpy's global RNG state after the block (shap reseeds it)."""
    state = np.random.get_state()
    try:
        yield
    finally:
        np.random.set_state(state)
