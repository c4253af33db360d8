"""Permutation SHAP (antithetic permutation sampling) through ``backend.predict``."""

from __future__ import annotations

from typing import Any

import numpy as np

from xaibench.backend import Backend
from xaibench.errors import ConfigError
from xaibench.explain._shap_common import (check_output_indices, check_positive_int,
                                           check_seed, empty_result, model_function,
                                           numpy_global_seed, resolve_masker)

#: refuse shapes whose (2M+1) x M boolean mask matrix (built by shap for every permutation)
#: would exceed this many bytes
MAX_MASK_MATRIX_BYTES = 2 * 1024**3


def min_max_evals(image_shape: tuple[int, ...]) -> int:
    """The smallest ``max_evals`` PermutationExplainer accepts for one image: 2·M + 1.

    M = H·W·C, the number of features of the image maskers (one per pixel and channel).
    """
    return 2 * int(np.prod(image_shape)) + 1


def permutation(backend: Backend, x: np.ndarray, output_indices: np.ndarray, *,
                masker: Any = "blur(8,8)", max_evals: int | None = None, batch_size: int = 50,
                seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
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

    Returns
    -------
    values (N, H, W, C, K) and base values (N, K): the model's scores for the all-hidden
    (masked) image. Values are exactly additive by construction.

    shap ignores ``outputs=`` here and explains every class; the requested columns are
    selected afterwards. For every permutation shap builds a dense (2·M + 1) × M boolean mask
    matrix: images whose matrix would exceed 2 GiB are refused (use ``partition``).
    """
    import shap

    from xaibench.explain._image_maskers import batched_fill

    idx = check_output_indices(x, output_indices)
    shape = tuple(x.shape[1:])
    n_features = int(np.prod(shape))
    minimum = min_max_evals(shape)
    if max_evals is None:
        max_evals = minimum
    max_evals = check_positive_int("max_evals", max_evals)
    if max_evals < minimum:
        raise ConfigError(
            f"permutation needs max_evals >= 2*M + 1 = {minimum} for images of shape "
            f"{shape} (M = {'*'.join(map(str, shape))} = {n_features} features, one antithetic "
            f"permutation); got max_evals={max_evals}")
    mask_bytes = (2 * n_features + 1) * n_features
    if mask_bytes > MAX_MASK_MATRIX_BYTES:
        raise ConfigError(
            f"permutation on images of shape {shape} would build a (2M+1) x M = "
            f"{2 * n_features + 1} x {n_features} mask matrix ({mask_bytes / 1024**3:.1f} GiB) "
            "per permutation; use 'partition' or smaller images")
    batch_size = check_positive_int("batch_size", batch_size)
    seed = check_seed(seed)
    shap_masker = resolve_masker(masker, shape)
    if len(x) == 0 or idx.shape[1] == 0:
        return empty_result(x, idx.shape[1])

    values = np.zeros((*x.shape, idx.shape[1]), dtype=np.float64)
    base_values = np.zeros(idx.shape, dtype=np.float64)
    with batched_fill(shap_masker) as fill:
        with numpy_global_seed(seed):
            explainer = shap.PermutationExplainer(model_function(backend, fill, batch_size),
                                                  shap_masker, seed=seed)
        for n in range(len(x)):
            with numpy_global_seed(seed):
                explanation = explainer(x[n:n + 1], max_evals=max_evals, batch_size=batch_size,
                                        silent=True)
            # (1, H, W, C, n_classes) and (1, n_classes): keep the requested outputs
            all_values = np.asarray(explanation.values).reshape(*shape, -1)
            all_base = np.asarray(explanation.base_values).reshape(-1)
            values[n] = all_values[..., idx[n]]
            base_values[n] = all_base[idx[n]]
    return values, base_values
