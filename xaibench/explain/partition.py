"""Partition SHAP (Owen values over shap's image partition tree) through ``backend.predict``."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from xaibench.backend import EXPLAINER_BATCH_SIZE, Backend
from xaibench.errors import ConfigError
from xaibench.explain._shap_common import (check_grouping, check_output_indices,
                                           check_positive_int, check_seed, empty_result,
                                           image_values, masker_input, model_function,
                                           numpy_global_seed, resolve_masker)


def partition(backend: Backend, x: np.ndarray, output_indices: np.ndarray, *,
              masker: Any = "blur(8,8)", max_evals: int = 500,
              batch_size: int = EXPLAINER_BATCH_SIZE,
              seed: int | None = 0, patch: int | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Explain ``output_indices`` of ``x`` with Partition SHAP (shap's ``PartitionExplainer``
    algorithm, bit for bit: :mod:`xaibench.explain._owen`).

    Parameters
    ----------
    masker
        A masker spec (see :mod:`xaibench.explain.maskers`), e.g. ``"blur(8,8)"`` or
        ``"inpaint_telea"``; a built shap image masker is accepted too. Its partition tree
        (axis-aligned halvings of the image, channels last) defines the Owen coalitions.
    max_evals
        shap's budget of masked model evaluations per image. Each image costs at most
        ``max_evals + 1`` evaluations (masks go in pairs; two evaluations are for the
        all-hidden and all-kept images);
        when the budget runs out, the credit left on a tree node is spread evenly over its
        pixels. Fully resolving an H·W·C = M feature tree takes on the order of M² evaluations.
    batch_size
        Masked images per ``backend.predict`` call.
    seed
        Seeds the tie-breaking noise shap adds to its priority queue (numpy's global RNG,
        restored afterwards), per image, so results do not depend on the batch an image is in.
    patch
        Group the pixels into square ``patch`` x ``patch`` superpixels (all channels of a
        pixel together; the last row and column are cut by the image's edge where ``patch``
        does not divide H or W): shap's tree then has ⌈H/p⌉·⌈W/p⌉ leaves (784 for a 224×224
        image at ``patch = 8``), not H·W·C, and each superpixel's value is divided evenly over
        its pixel-channels. None (the default): one feature per pixel-channel. Not for
        tabular rows.

    Returns
    -------
    values (N, H, W, C, K) and base values (N, K): the model's scores for the all-hidden
    (masked) image, in the model-score space. Values are exactly additive:
    ``values.sum((1, 2, 3)) == f(x) - base`` (up to float rounding).

    Each image is explained separately, with shap's ``outputs=`` set to that image's row of
    ``output_indices``, so top-k targets that differ between images are handled exactly.
    shap spends the budget on the tree nodes where the requested outputs *jointly* change
    most, so unless ``max_evals`` resolves the whole tree, the values for one class depend on
    which other classes are explained alongside it.
    """
    from xaibench.explain._image_maskers import batched_fill
    from xaibench.explain._owen import PartitionTree, owen_values

    idx = check_output_indices(x, output_indices)
    max_evals = check_positive_int("max_evals", max_evals, minimum=2)
    batch_size = check_positive_int("batch_size", batch_size)
    seed = check_seed(seed)
    patch = check_grouping(backend, patch)
    shape = tuple(x.shape[1:])
    shap_masker = resolve_masker(masker, shape, patch)
    if len(x) == 0 or idx.shape[1] == 0:
        return empty_result(x, idx.shape[1])

    values = np.zeros((*x.shape, idx.shape[1]), dtype=np.float64)
    rows = masker_input(shap_masker, x)
    base_values = np.zeros(idx.shape, dtype=np.float64)
    if getattr(shap_masker, "clustering", None) is None:
        raise ConfigError(f"partition needs a masker with a partition tree (clustering); "
                          f"{shap_masker!r} has none (for tabular rows use 'partition')")
    tree = PartitionTree(shap_masker.clustering)
    every_feature = np.ones((1, tree.n_features), dtype=bool)
    with batched_fill(shap_masker) as fill:
        model = model_function(backend, fill)
        for n in range(len(x)):
            evaluate, outputs = _masked_row_model(shap_masker, model, rows[n], fill), idx[n]
            with numpy_global_seed(seed):
                f00, f11 = evaluate(~every_feature)[0, outputs], evaluate(every_feature)[0, outputs]
                owen = owen_values(lambda masks: evaluate(masks)[:, outputs], tree, f00, f11,
                                   max_evals - 2, batch_size)
            values[n] = image_values(shap_masker, owen, shape)
            base_values[n] = f00
    return values, base_values


def _masked_row_model(masker: Any, model: Callable[[np.ndarray], np.ndarray], row: np.ndarray,
                      fill: Callable[[np.ndarray], np.ndarray] | None
                      ) -> Callable[[np.ndarray], np.ndarray]:
    """(B, M) keep masks -> (B, n_outputs) float64 scores of ``row`` masked as ``masker``
    masks it. A masker whose filling is deferred (``fill``) is handed the row once and the
    model fills and predicts whole batches of masks; any other masker goes through shap's
    ``MaskedModel`` (which averages over a tabular masker's background rows)."""
    if fill is None:
        from shap import links
        from shap.utils import MaskedModel

        return MaskedModel(model, masker, links.identity, True, row)
    masker(np.zeros(masker.shape[1], dtype=bool), row)  # the image the masks apply to
    return lambda masks: model(masks).astype(np.float64)
