"""Explainers: model-agnostic ones over ``backend.predict`` and dispatch to native ones.

Every explainer is ``fn(backend, x, output_indices, **params) -> (values, base_values)`` and is
normally run through ``backend.explain(name, x, targets, **params)`` (see
:data:`xaibench.registry.explainers`):

- ``partition``: :func:`xaibench.explain.partition.partition` — shap's PartitionExplainer
  algorithm (Owen values), compiled, bit-identical to shap's
- ``permutation``: :func:`xaibench.explain.permutation.permutation` — shap
  PermutationExplainer; needs ``max_evals >= 2·M + 1`` (M = H·W·C, or the number of
  superpixels with ``patch``)
- ``random``: :func:`xaibench.explain.baselines.random` — noise floor for metrics, not additive
- ``deep``, ``gradient``: :mod:`xaibench.explain.native` — computed by the framework backends
- ``cam``, ``gradcam``, ``gradcam_pp``: :mod:`xaibench.explain.native` — class activation maps
  at a convolution layer, computed by the framework backends (:mod:`backends._cam`); not
  additive (base values 0)

Maskers (``masker="blur(8,8)"``, ``"inpaint_telea"``, ``"inpaint_ns"``) are built from spec
strings by :func:`make_masker` / parsed by :func:`parse_masker_spec`
(:mod:`xaibench.explain.maskers`); both are re-exported here lazily.

Both model-agnostic explainers take ``patch``: features are then square ``patch`` x ``patch``
superpixels (all channels of a pixel together) instead of pixel-channels, and each
superpixel's value is divided evenly over its pixel-channels
(:class:`xaibench.explain._image_maskers.GroupedMasker`).

Importing this package imports neither shap nor OpenCV nor any framework: the explainers and
maskers import shap when they run.
"""

from __future__ import annotations

from typing import Any

__all__ = ["make_masker", "parse_masker_spec"]


def __getattr__(name: str) -> Any:
    # lazy re-exports; the explainer functions share their submodules' names, so they are
    # reached through those (xaibench.explain.partition.partition) or the registry
    if name in __all__:
        from xaibench.explain import maskers
        return getattr(maskers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
