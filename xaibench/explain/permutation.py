"""Permutation SHAP (antithetic permutation sampling) through ``backend.predict``."""

from __future__ import annotations

from typing import Any

import numpy as np

from xaibench.backend import EXPLAINER_BATCH_SIZE, Backend
from xaibench.errors import ConfigError
from xaibench.explain._shap_common import (check_grouping, check_output_indices,
                                           check_positive_int, check_seed, empty_result,
                                           image_values, masker_input, model_function,
                                           numpy_global_seed, resolve_masker)
from xaibench.explain.maskers import n_features as count_features, patch_grid

#: refuse shapes whose (2M+1) x M boolean mask matrix (built by shap for every permutation)
#: would exceed this many bytes
MAX_MASK_MATRIX_BYTES = 2 * 1024**3
#: the superpixel side the refusal of too large a mask matrix suggests
SUGGESTED_PATCH = 8


def min_max_evals(image_shape: tuple[int, int, int], patch: int | None = None) -> int:
    """The smallest ``max_evals`` PermutationExplainer accepts for one image: 2·M + 1.

    M = H·W·C, the number of features of the image maskers (one per pixel and channel), or
    with ``patch`` the number of superpixels ⌈H/p⌉·⌈W/p⌉.
    """
    return 2 * count_features(image_shape, patch) + 1


def permutation(backend: Backend, x: np.ndarray, output_indices: np.ndarray, *,
                masker: Any = "blur(8,8)", max_evals: int | None = None,
                batch_size: int = EXPLAINER_BATCH_SIZE,
                seed: int | None = 0, patch: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Explain ``output_indices`` of ``x`` with ``shap.PermutationExplainer``.

    Parameters
    ----------
    masker
        A masker spec (see :mod:`xaibench.explain.maskers`), e.g. ``"blur(8,8)"``; a built shap
        image masker is accepted too. Permutations are drawn to respect its partition tree.
    max_evals
        Budget of model evaluations per image. One antithetic permutation (forward then
        backward through all M = H·W·C features) costs 2·M + 1 evaluations, so
        ``max_evals`` must be at least 2·M + 1 (e.g. 1569 for a 28×28×1 image); shap runs
        ``max_evals // (2·M + 1)`` permutations, and each image costs exactly that many
        times 2·M + 1 evaluations. ``None`` (the default) means one permutation, which is
        exact for models without interactions beyond second order.
    batch_size
        Masked images per ``backend.predict`` call.
    seed
        Seeds the permutations (numpy's global RNG, restored afterwards), per image.
    patch
        Permute square ``patch`` x ``patch`` superpixels (all channels of a pixel together;
        cut by the image's edge where ``patch`` does not divide H or W) instead of
        pixel-channels: M = ⌈H/p⌉·⌈W/p⌉ (784 for a 224×224 image at ``patch = 8``), and each
        superpixel's value is divided evenly over its pixel-channels. Not for tabular rows.

    Returns
    -------
    values (N, H, W, C, K) and base values (N, K): the model's scores for the all-hidden
    (masked) image. Values are exactly additive by construction.

    shap ignores ``outputs=`` here and explains every class; the requested columns are
    selected afterwards. For every permutation shap builds a dense (2·M + 1) × M boolean mask
    matrix: images whose matrix would exceed 2 GiB are refused (set ``patch``).
    """
    import shap

    from xaibench.explain._image_maskers import batched_fill

    idx = check_output_indices(x, output_indices)
    shape = tuple(x.shape[1:])
    patch = check_grouping(backend, patch)
    n_features = count_features(shape, patch)
    minimum = min_max_evals(shape, patch)
    if max_evals is None:
        max_evals = minimum
    max_evals = check_positive_int("max_evals", max_evals)
    if max_evals < minimum:
        what = ('*'.join(map(str, shape)) if patch is None
                else f"{'x'.join(map(str, patch_grid(shape, patch)))} superpixels of "
                     f"patch = {patch}")
        raise ConfigError(
            f"permutation needs max_evals >= 2*M + 1 = {minimum} for images of shape "
            f"{shape} (M = {what} = {n_features} features, one antithetic "
            f"permutation); got max_evals={max_evals}")
    mask_bytes = (2 * n_features + 1) * n_features
    if mask_bytes > MAX_MASK_MATRIX_BYTES:
        suggested = min(SUGGESTED_PATCH, *shape[:2])
        raise ConfigError(
            f"permutation on images of shape {shape} would build a (2M+1) x M = "
            f"{2 * n_features + 1} x {n_features} mask matrix ({mask_bytes / 1024**3:.1f} GiB) "
            f"per permutation; group pixels into superpixels with patch = {suggested} "
            f"(M = {count_features(shape, suggested)} features) or more")
    batch_size = check_positive_int("batch_size", batch_size)
    seed = check_seed(seed)
    shap_masker = resolve_masker(masker, shape, patch)
    if len(x) == 0 or idx.shape[1] == 0:
        return empty_result(x, idx.shape[1])

    values = np.zeros((*x.shape, idx.shape[1]), dtype=np.float64)
    rows = masker_input(shap_masker, x)
    base_values = np.zeros(idx.shape, dtype=np.float64)
    with batched_fill(shap_masker) as fill:
        with numpy_global_seed(seed):
            explainer = shap.PermutationExplainer(model_function(backend, fill, batch_size),
                                                  shap_masker, seed=seed)
        for n in range(len(x)):
            with numpy_global_seed(seed):
                explanation = explainer(rows[n:n + 1], max_evals=max_evals, batch_size=batch_size,
                                        silent=True)
            # (1, features, n_classes) and (1, n_classes): keep the requested outputs
            all_values = image_values(shap_masker, explanation.values[0], shape)
            all_base = np.asarray(explanation.base_values).reshape(-1)
            values[n] = all_values[..., idx[n]]
            base_values[n] = all_base[idx[n]]
    return values, base_values
