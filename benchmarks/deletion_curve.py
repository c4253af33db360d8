"""The per-step reference of the batched deletion curve (row g of ``python -m benchmarks``).

:func:`xaibench.metrics.perturbation_curves` puts all steps of all images in one
``backend.predict`` call; :func:`loop_deletion_curves` calls ``predict`` once per perturbed
image. The ratio grows with the per-call overhead relative to the per-image compute: small
models, many threads on busy cores, accelerators.
"""

from __future__ import annotations

import numpy as np

from xaibench.backend import Attribution, Backend
from xaibench.metrics._ranking import descending_positions, pixel_relevance
from xaibench.metrics._replacement import make_filler
from xaibench.metrics.faithfulness import removal_masks


def loop_deletion_curves(backend: Backend, x: np.ndarray, attribution: Attribution, steps: int,
                         replacement: str) -> np.ndarray:
    """The same deletion curves with one ``predict`` call per perturbed image."""
    n, h, w, _ = x.shape
    fill = make_filler(replacement, None, "blur", backend.spec.shape)
    positions = descending_positions(pixel_relevance(attribution.values))
    targets = attribution.output_indices
    curves = np.empty((*targets.shape, steps + 1))
    for i in range(n):
        for k, target in enumerate(targets[i]):
            for j, removed in enumerate(removal_masks(positions[i, k], "deletion", steps)):
                image = fill(x[i], removed.reshape(1, h, w))
                curves[i, k, j] = backend.predict(image)[0, target]
    return curves
