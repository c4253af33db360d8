"""Model-parameter randomisation test (MPRT), cascading top-down.

For n = 1 .. L (L = ``len(backend.layer_names())``) the top n parameterised layers are
re-initialised (``backend.randomized(n, seed=seed)``), the images are explained again with the
same explainer, parameters and outputs, and the Spearman rank correlation of the pixel
magnitudes |r| (r = Σ_c φ) before and after is recorded. An attribution that depends on the
model decorrelates quickly (low similarity, better); one that ignores the model — e.g. the
input itself — keeps similarity 1 at every layer.

The runner must pass ``explain_params`` (the full params given to ``backend.explain``,
background images included): the attribution record keeps only the non-array params.
Given a :class:`~xaibench.metrics.base.MetricContext`, MPRT hands on its per-layer curve as
the arrays :data:`MPRT_ARRAY` (N, K, L) and :data:`MPRT_LAYERS` (L,), the layer labels as a
unicode array (it loads without pickle).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xaibench.backend import Attribution, Backend
from xaibench.metrics._ranking import check_images_match, pixel_relevance, spearman
from xaibench.metrics._reexplain import explain_like
from xaibench.metrics.base import Metric, MetricContext

#: names of the arrays MPRT hands on: similarities (N, K, L) and layer labels (output first)
MPRT_ARRAY, MPRT_LAYERS = "mprt_curve", "mprt_layers"


def mprt_curve(backend: Backend, x: np.ndarray, attribution: Attribution, *,
               explain_params: dict[str, Any] | None = None,
               seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Layer labels and similarities (N, K, L) of the cascading randomisation.

    Point l is the model with its top l + 1 layers re-initialised; its label is the layer
    nearest the input re-initialised so far (the output layer first). Costs L re-explanations.
    """
    x = backend.spec.check(x)
    check_images_match(x, attribution)
    names = list(backend.layer_names())
    reference = np.abs(pixel_relevance(attribution.values))
    curve = np.empty((*reference.shape[:2], len(names)))
    for n_layers in range(1, len(names) + 1):
        randomized = backend.randomized(n_layers, seed=seed)
        again = explain_like(randomized, attribution, x, attribution.output_indices,
                             explain_params, MPRT.name)
        curve[..., n_layers - 1] = spearman(reference, np.abs(pixel_relevance(again.values)))
    return names[::-1], curve


class MPRT(Metric):
    """Mean Spearman similarity over the cascading randomisation; lower = more model-sensitive.

    Call with ``explain_params`` (see the module notes); ``seed`` seeds the re-initialisation.
    """

    name = "mprt"
    higher_is_better = False
    category = "randomisation"
    consumes = frozenset({"seed", "explain_params", "context"})

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def __call__(self, backend: Backend, x: np.ndarray, attribution: Attribution, *,
                 masker: Any = None, masks: np.ndarray | None = None,
                 explain_params: dict[str, Any] | None = None,
                 context: MetricContext | None = None) -> np.ndarray:
        names, curve = mprt_curve(backend, x, attribution, explain_params=explain_params,
                                  seed=self.seed)
        if context is not None:
            context.keep(MPRT_ARRAY, curve)
            context.keep(MPRT_LAYERS, np.array(names, dtype=str))
        return curve.mean(axis=-1)
