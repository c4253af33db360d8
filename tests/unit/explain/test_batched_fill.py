"""Deferred, batched masker filling (``batched_fill``) gives the same attributions as shap's
own per-mask filling: the explainers are compared with shap called directly on the same
seed and an immediate (non-deferred) masker, with ``np.array_equal`` — each row is filled by
the same ``_fill``, so the model sees bit-identical batches."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.explain._backends import smooth_images
from xaibench.explain._shap_common import model_function, numpy_global_seed
from xaibench.explain.maskers import make_masker
from xaibench.explain.partition import partition
from xaibench.explain.permutation import permutation

SPECS = ("blur(3,3)", "inpaint_telea", "inpaint_ns", "constant(0.25)")


def shap_directly(method: str, backend, x: np.ndarray, idx: np.ndarray, spec: str,
                  **params) -> tuple[np.ndarray, np.ndarray]:
    """The reference path: shap's explainer with a masker that fills every mask as shap
    calls it (no deferral, no thread pool)."""
    import shap

    masker = make_masker(spec, backend.spec.shape)
    values, base = [], []
    for n in range(len(x)):
        with numpy_global_seed(0):
            if method == "partition":
                explanation = shap.PartitionExplainer(model_function(backend), masker)(
                    x[n:n + 1], outputs=idx[n], silent=True, **params)
                values.append(np.asarray(explanation.values).reshape(*x.shape[1:], -1))
                base.append(np.asarray(explanation.base_values).reshape(-1))
            else:
                explanation = shap.PermutationExplainer(model_function(backend), masker,
                                                        seed=0)(x[n:n + 1], silent=True,
                                                                **params)
                values.append(np.asarray(explanation.values).reshape(*x.shape[1:], -1)
                              [..., idx[n]])
                base.append(np.asarray(explanation.base_values).reshape(-1)[idx[n]])
    return np.stack(values), np.stack(base)


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("method", ["partition", "permutation"])
def test_batched_fill_gives_the_attributions_of_shap_called_directly(torch_backend, method,
                                                                     spec):
    x = smooth_images(2, torch_backend.spec.shape, seed=3)
    idx = np.array([[0, 2], [1, 0]])
    params = {"max_evals": 60, "batch_size": 16} if method == "partition" else \
        {"max_evals": 129, "batch_size": 16}
    explain = partition if method == "partition" else permutation
    values, base = explain(torch_backend, x, idx, masker=spec, seed=0, **params)
    ref_values, ref_base = shap_directly(method, torch_backend, x, idx, spec, **params)
    assert np.array_equal(values, ref_values)
    assert np.array_equal(base, ref_base)


def test_masker_outside_batched_fill_still_fills_immediately():
    from xaibench.explain._image_maskers import batched_fill

    masker = make_masker("inpaint_telea", (8, 8, 1))
    x = smooth_images(1, (8, 8, 1))[0]
    keep = np.ones(64, bool)
    keep[20:30] = False
    immediate = masker(keep, x)[0]
    with batched_fill(masker) as fill:
        deferred = masker(keep, x)[0]
        assert deferred.dtype == bool
        assert np.array_equal(fill(np.concatenate([deferred, deferred])),
                              np.concatenate([immediate, immediate]))
    assert np.array_equal(masker(keep, x)[0], immediate)
