"""Faithfulness correlation (Bhatt et al., IJCAI 2020) and infidelity (Yeh et al., NeurIPS 2019).

Both compare, over random sets S of removed pixels (all channels), the attribution mass of S,
Σ_{i∈S} r_i (r = Σ_c φ per pixel), with the drop of the explained output when S is removed,
Δf(S) = f(x) − f(x with S replaced). Removed pixels are filled as in the perturbation curves
(:mod:`xaibench.metrics._replacement`): the cell's masker by default (``replacement="masker"``,
``fallback`` for cells without one), or ``"zero"``, ``"mean"`` or a masker spec. f is the raw
score (``space="score"``, default) or the class probability (``space="probability"``).

- **faithfulness correlation**: Pearson correlation of Σ_S r and Δf(S) over ``n_draws`` sets of
  ``subset_fraction``·P pixels drawn uniformly; in [−1, 1], higher is better. NaN where either
  side does not vary over the draws (e.g. a constant map: every set has the same mass).
- **infidelity**, with *square removals*: S is a ``square``×``square`` patch at a uniformly
  drawn position, and the perturbation I of Yeh et al. is its indicator, I·φ = Σ_S r. This is
  the form for attributions already scaled by (x − baseline), as SHAP values and gradient × input
  are — it equals Yeh's I = x − x̃ applied to the sensitivity φ / (x − x̃). The score is
  E_S[(β·Σ_S r − Δf(S))²] in squared output units, lower is better, with β = 1 when
  ``normalise=False`` and otherwise the optimal scale β = E[Σ_S r·Δf] / E[(Σ_S r)²] (Yeh et al.,
  Sec. 3; Captum's ``normalize``), so that the score does not reward or punish the overall scale
  of a map (the random baseline's N(0, 1) noise is on no model's scale). NaN where the map is 0
  on every drawn set and β is undefined.

For a linear model f(x) = w·x with φ = w ⊙ (x − b) and removed pixels set to b, Δf(S) = Σ_S r
exactly: the correlation is 1 and the infidelity 0. The sets are drawn from ``seed`` (the cell's
seed unless ``metric_params`` set one — set it to score every explainer on the same sets); the
sets of an image serve all its explained outputs, and go through ``backend.predict`` with the
sets of other images up to ``MAX_BATCH_BYTES`` of input per call.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from xaibench.backend import Attribution, Backend
from xaibench.errors import ConfigError
from xaibench.metrics._ranking import check_images_match, pixel_relevance
from xaibench.metrics._replacement import check_replacement, make_filler
from xaibench.metrics.base import Metric, check_count
from xaibench.metrics.faithfulness import MAX_BATCH_BYTES, check_space, class_probabilities


def removal_effects(backend: Backend, x: np.ndarray, attribution: Attribution,
                    removed: np.ndarray, *, replacement: str = "masker", masker: Any = None,
                    fallback: str = "blur",
                    space: str = "score") -> tuple[np.ndarray, np.ndarray]:
    """Attribution mass Σ_S r and output drop Δf(S), both (N, K, S), of the removal sets
    ``removed`` (N, S, H, W) (True = removed pixel)."""
    check_space(space, "space")
    x = backend.spec.check(x)
    check_images_match(x, attribution)
    n, h, w, c = x.shape
    if removed.shape[0] != n or removed.shape[2:] != (h, w):
        raise ConfigError(f"removal sets {removed.shape} do not fit images of shape {x.shape}")
    fill = make_filler(replacement, masker, fallback, backend.spec.shape)
    targets = attribution.output_indices
    flat = removed.reshape(n, removed.shape[1], h * w)
    mass = np.einsum("nkp,nsp->nks", pixel_relevance(attribution.values), flat.astype(float))
    per_image = removed.shape[1] + 1
    chunk = max(1, int(MAX_BATCH_BYTES) // max(1, per_image * x.itemsize * h * w * c))
    drops = np.empty(mass.shape)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        batch = np.concatenate([np.concatenate([x[i:i + 1], fill(x[i], removed[i])])
                                for i in range(start, stop)])
        scores = backend.predict(batch)
        if space == "probability":
            scores = class_probabilities(scores)
        scores = np.asarray(scores, np.float64).reshape(stop - start, per_image, -1)
        picked = np.take_along_axis(scores, targets[start:stop, None, :], axis=-1)  # (n, 1+S, K)
        drops[start:stop] = np.moveaxis(picked[:, :1] - picked[:, 1:], 1, -1)
    return mass, drops


class _RemovalMetric(Metric):
    """A metric over random removal sets drawn from ``seed`` (see the module notes)."""

    category = "faithfulness"
    consumes = frozenset({"seed", "masker"})

    def __init__(self, n_draws: int, seed: int, replacement: str, fallback: str,
                 space: str) -> None:
        self.n_draws = check_count("n_draws", n_draws, 2)
        check_replacement(replacement, allow_masker=True)
        check_replacement(fallback, allow_masker=False)
        check_space(space, "space")
        self.seed, self.replacement, self.fallback, self.space = \
            int(seed), replacement, fallback, space

    @abstractmethod
    def _draw(self, rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
        """Removal sets (n, n_draws, h, w)."""

    def _effects(self, backend: Backend, x: np.ndarray, attribution: Attribution,
                 masker: Any) -> tuple[np.ndarray, np.ndarray]:
        n, h, w, _ = np.shape(x)
        removed = self._draw(np.random.default_rng(self.seed), n, h, w)
        return removal_effects(backend, x, attribution, removed, replacement=self.replacement,
                               masker=masker, fallback=self.fallback, space=self.space)


class FaithfulnessCorrelation(_RemovalMetric):
    """Pearson correlation of Σ_S r with the output drop over random pixel sets; higher is
    better."""

    name = "faithfulness_correlation"
    higher_is_better = True

    def __init__(self, subset_fraction: float = 0.1, n_draws: int = 50, seed: int = 0,
                 replacement: str = "masker", fallback: str = "blur",
                 space: str = "score") -> None:
        if not 0.0 < subset_fraction < 1.0:
            raise ConfigError(f"subset_fraction must be in (0, 1), got {subset_fraction!r}")
        super().__init__(n_draws, seed, replacement, fallback, space)
        self.subset_fraction = float(subset_fraction)

    def _draw(self, rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
        size = max(1, int(round(self.subset_fraction * h * w)))
        order = rng.random((n, self.n_draws, h * w)).argsort(axis=-1)
        return (order < size).reshape(n, self.n_draws, h, w)

    def __call__(self, backend: Backend, x: np.ndarray, attribution: Attribution, *,
                 masker: Any = None, masks: np.ndarray | None = None) -> np.ndarray:
        mass, drops = self._effects(backend, x, attribution, masker)
        mass = mass - mass.mean(axis=-1, keepdims=True)
        drops = drops - drops.mean(axis=-1, keepdims=True)
        scale = np.sqrt((mass ** 2).sum(axis=-1) * (drops ** 2).sum(axis=-1))
        tiny = 1e-12 * np.maximum(1.0, np.abs(mass).max(axis=-1) * np.abs(drops).max(axis=-1))
        defined = scale > tiny
        rho = (mass * drops).sum(axis=-1) / np.where(defined, scale, 1.0)
        return np.where(defined, np.clip(rho, -1.0, 1.0), np.nan)


class Infidelity(_RemovalMetric):
    """Mean squared gap between Σ_S r and the output drop over random square removals; lower
    is better."""

    name = "infidelity"
    higher_is_better = False

    def __init__(self, square: int = 4, n_draws: int = 32, seed: int = 0,
                 replacement: str = "masker", fallback: str = "blur", space: str = "score",
                 normalise: bool = True) -> None:
        super().__init__(n_draws, seed, replacement, fallback, space)
        self.square, self.normalise = check_count("square", square, 1), bool(normalise)

    def _draw(self, rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
        if self.square > min(h, w):
            raise ConfigError(f"square {self.square} is larger than the {h}x{w} image; use "
                              f"square <= {min(h, w)}")
        top = rng.integers(0, h - self.square + 1, (n, self.n_draws))
        left = rng.integers(0, w - self.square + 1, (n, self.n_draws))
        rows, cols = np.arange(h), np.arange(w)
        inside_rows = (rows >= top[..., None]) & (rows < top[..., None] + self.square)
        inside_cols = (cols >= left[..., None]) & (cols < left[..., None] + self.square)
        return inside_rows[..., :, None] & inside_cols[..., None, :]

    def __call__(self, backend: Backend, x: np.ndarray, attribution: Attribution, *,
                 masker: Any = None, masks: np.ndarray | None = None) -> np.ndarray:
        mass, drops = self._effects(backend, x, attribution, masker)
        if not self.normalise:
            return ((mass - drops) ** 2).mean(axis=-1)
        energy = (mass ** 2).sum(axis=-1)
        defined = energy > 0
        beta = (mass * drops).sum(axis=-1) / np.where(defined, energy, 1.0)
        gap = ((beta[..., None] * mass - drops) ** 2).mean(axis=-1)
        return np.where(defined, gap, np.nan)
