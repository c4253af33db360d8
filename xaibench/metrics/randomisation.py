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

Two variants of Hedström et al. (2024, "Sanity checks revisited"):

- **smooth MPRT** (``smprt``): the same cascade, but every explanation — of the original model
  too — is the mean of the explanations of ``n_samples`` noisy copies x + ε, ε ~ N(0, σ²) per
  pixel-channel with σ = ``noise`` × the width of the backend's value range (the copies clipped
  into it; the same copies for every model). Averaging removes the gradient shattering noise
  that makes MPRT of the original model itself look unstable. With ``noise=0`` and
  ``n_samples=1`` it is MPRT for any deterministic explainer. Lower is better.
- **efficient MPRT** (``emprt``): one re-explanation with the fully randomised model; the score
  is the rise in explanation complexity H(|r_random|) / H(|r|), H the discrete entropy (nats)
  of the histogram of the pixel magnitudes over ``n_bins`` equal-width bins spanning each map.
  An explanation that depends on the model turns into noise (ratio > 1); one that ignores it
  keeps its complexity (ratio 1). Higher is better; NaN where H(|r|) = 0 (a constant map).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from xaibench.backend import Attribution, Backend
from xaibench.errors import ConfigError
from xaibench.metrics._ranking import check_images_match, pixel_relevance, spearman
from xaibench.metrics._reexplain import explain_like
from xaibench.metrics.base import Metric, MetricContext, check_count

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

    def magnitude(model: Backend) -> np.ndarray:
        again = explain_like(model, attribution, x, attribution.output_indices, explain_params,
                             MPRT.name)
        return np.abs(pixel_relevance(again.values))

    return _cascade(backend, np.abs(pixel_relevance(attribution.values)), magnitude, seed)


def smooth_mprt_curve(backend: Backend, x: np.ndarray, attribution: Attribution, *,
                      explain_params: dict[str, Any] | None = None, seed: int = 0,
                      noise: float = 0.1, n_samples: int = 10) -> tuple[list[str], np.ndarray]:
    """Layer labels and similarities (N, K, L) of the smooth-MPRT cascade (module notes).

    Costs L + 1 re-explanations of ``n_samples`` copies of every image; ``seed`` draws the noise
    and seeds the re-initialisation.
    """
    x = backend.spec.check(x)
    check_images_match(x, attribution)
    low, high = backend.spec.value_range
    rng = np.random.default_rng(seed)
    noisy = x[None] + rng.normal(0.0, noise * (high - low), (n_samples, *x.shape))
    noisy = np.clip(noisy, low, high).astype(x.dtype).reshape(-1, *x.shape[1:])
    targets = np.tile(attribution.output_indices, (n_samples, 1))

    def magnitude(model: Backend) -> np.ndarray:
        again = explain_like(model, attribution, noisy, targets, explain_params, SmoothMPRT.name)
        relevance = pixel_relevance(again.values)  # (n_samples · N, K, P), sample-major
        return np.abs(relevance.reshape(n_samples, len(x), *relevance.shape[1:]).mean(axis=0))

    return _cascade(backend, magnitude(backend), magnitude, seed)


def _cascade(backend: Backend, reference: np.ndarray,
             magnitude: Callable[[Backend], np.ndarray], seed: int) -> tuple[list[str], np.ndarray]:
    """Spearman similarity (N, K, L) of ``reference`` with ``magnitude`` of the model with its
    top 1 … L layers re-initialised, and the layer labels (output first)."""
    names = list(backend.layer_names())
    curve = np.empty((*reference.shape[:2], len(names)))
    for n_layers in range(1, len(names) + 1):
        curve[..., n_layers - 1] = spearman(reference,
                                            magnitude(backend.randomized(n_layers, seed=seed)))
    return names[::-1], curve


def discrete_entropy(magnitudes: np.ndarray, n_bins: int) -> np.ndarray:
    """Entropy (nats) of the histogram of each row (..., P) over ``n_bins`` equal-width bins from
    the row's min to its max: 0 for a constant row, log(n_bins) for one spread evenly."""
    magnitudes = np.asarray(magnitudes, dtype=np.float64)
    low = magnitudes.min(axis=-1, keepdims=True)
    width = magnitudes.max(axis=-1, keepdims=True) - low
    bins = np.floor((magnitudes - low) / np.where(width > 0, width, 1.0) * n_bins)
    bins = np.clip(bins, 0, n_bins - 1).astype(np.int64).reshape(-1, magnitudes.shape[-1])
    rows = np.arange(len(bins))[:, None]
    counts = np.bincount((rows * n_bins + bins).ravel(), minlength=len(bins) * n_bins)
    p = counts.reshape(len(bins), n_bins) / magnitudes.shape[-1]
    plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -plogp.sum(axis=-1).reshape(magnitudes.shape[:-1])


class MPRT(Metric):
    """Mean Spearman similarity over the cascading randomisation; lower = more model-sensitive.

    Call with ``explain_params`` (see the module notes); ``seed`` seeds the re-initialisation.
    """

    name = "mprt"
    higher_is_better = False
    category = "randomisation"
    randomises_model = True
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


class SmoothMPRT(Metric):
    """Mean Spearman similarity over the cascade of noise-averaged explanations (module notes);
    lower = more model-sensitive. Call with ``explain_params``."""

    name = "smprt"
    higher_is_better = False
    category = "randomisation"
    randomises_model = True
    consumes = frozenset({"seed", "explain_params"})

    def __init__(self, noise: float = 0.1, n_samples: int = 10, seed: int = 0) -> None:
        if not noise >= 0:
            raise ConfigError(f"noise must be >= 0 (a fraction of the value range), "
                              f"got {noise!r}")
        self.noise, self.seed = float(noise), int(seed)
        self.n_samples = check_count("n_samples", n_samples, 1)

    def __call__(self, backend: Backend, x: np.ndarray, attribution: Attribution, *,
                 masker: Any = None, masks: np.ndarray | None = None,
                 explain_params: dict[str, Any] | None = None) -> np.ndarray:
        _, curve = smooth_mprt_curve(backend, x, attribution, explain_params=explain_params,
                                     seed=self.seed, noise=self.noise, n_samples=self.n_samples)
        return curve.mean(axis=-1)


class EfficientMPRT(Metric):
    """Rise in histogram entropy of |r| from the original to the fully randomised model (module
    notes); higher = more model-sensitive. Call with ``explain_params``."""

    name = "emprt"
    higher_is_better = True
    category = "randomisation"
    randomises_model = True
    consumes = frozenset({"seed", "explain_params"})

    def __init__(self, n_bins: int = 100, seed: int = 0) -> None:
        if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 2:
            raise ConfigError(f"n_bins must be an integer >= 2, got {n_bins!r}")
        self.n_bins, self.seed = n_bins, int(seed)

    def __call__(self, backend: Backend, x: np.ndarray, attribution: Attribution, *,
                 masker: Any = None, masks: np.ndarray | None = None,
                 explain_params: dict[str, Any] | None = None) -> np.ndarray:
        x = backend.spec.check(x)
        check_images_match(x, attribution)
        randomized = backend.randomized(len(backend.layer_names()), seed=self.seed)
        again = explain_like(randomized, attribution, x, attribution.output_indices,
                             explain_params, self.name)
        before = discrete_entropy(np.abs(pixel_relevance(attribution.values)), self.n_bins)
        after = discrete_entropy(np.abs(pixel_relevance(again.values)), self.n_bins)
        return np.where(before > 0, after / np.where(before > 0, before, 1.0), np.nan)
