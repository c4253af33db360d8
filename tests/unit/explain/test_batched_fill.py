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


def test_delta_masks_decode_as_shaps_own_conversion():
    from shap.utils import MaskedModel
    from shap.utils._masked_model import _convert_delta_mask_to_full

    from xaibench.explain._image_maskers import DeltaMasks

    rng = np.random.default_rng(0)
    n_features = 12
    entries = [MaskedModel.delta_mask_noop_value]  # mask 0: all hidden
    for _ in range(40):  # each mask: 0-2 continuing flips, then an ending flip or a no-op
        entries += [-int(f) - 1 for f in rng.integers(0, n_features, rng.integers(0, 3))]
        entries.append(int(rng.integers(0, n_features)) if rng.random() < 0.9
                       else MaskedModel.delta_mask_noop_value)
    deltas = np.array(entries)
    full = np.zeros((int((deltas >= 0).sum()), n_features), dtype=bool)
    _convert_delta_mask_to_full(deltas, full)
    decoded = DeltaMasks(deltas, n_features)
    assert decoded.n_masks == len(full) == 41
    np.testing.assert_array_equal(decoded.rows(np.arange(41)), full)
    for ids in ([5], [17, 18, 19], [40], [3, 30, 12], []):  # any subset, in any order
        np.testing.assert_array_equal(decoded.rows(np.array(ids, int)), full[ids])


def test_permutation_hands_the_masker_one_delta_call_and_predicts_in_batches(torch_backend):
    """The masker is called once per permutation (not 2M + 1 times) and the model still sees
    batches of ``batch_size`` masked images."""
    from tests.unit.explain._backends import TinyTorchBackend
    from xaibench.explain._image_maskers import BlurMasker

    calls = []

    class CountingBlur(BlurMasker):
        def __call__(self, mask, x):
            calls.append(np.asarray(mask).dtype.kind)
            return super().__call__(mask, x)

    sizes: list[int] = []
    backend = TinyTorchBackend(torch_backend.spec, seed=0, batch_size=64)
    backend._predict_batch = lambda x: (sizes.append(len(x)),
                                        TinyTorchBackend._predict_batch(backend, x))[1]
    permutation(backend, smooth_images(1, backend.spec.shape), np.array([[0]]),
                masker=CountingBlur(backend.spec.shape, 3, 3), max_evals=2 * 129, batch_size=16,
                seed=0)
    assert calls == ["i", "i"]  # two permutations, one call each
    assert sizes == ([16] * 8 + [1]) * 2  # 129 evaluations per permutation, 16 at a time
