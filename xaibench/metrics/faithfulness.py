"""Faithfulness: deletion (MoRF) and insertion curves, their AUCs, and ABPC.

Conventions (P pixels, ``steps`` = k, pixel relevance r = Σ_c φ, ranked most relevant first,
ties in raster order; ``n_j = round(j·P/k)`` half up, so n_0 = 0 and n_k = P):

- **deletion** (MoRF): point j is f(x with its n_j *most* relevant pixels replaced); it starts
  at f(x) and ends at f(fully replaced). A faithful attribution makes it fall fast (lower AUC).
- **insertion**: point j is f(x with only its P − n_{k−j} most relevant pixels kept, the rest
  replaced) — it starts from the fully replaced image and restores the most relevant pixels
  first, ending at f(x). Read backwards it is *exactly* the LeRF curve (the n_{k−j} least
  relevant pixels removed at removal step k − j). A faithful attribution makes it rise fast.
- **ABPC** = AUC(insertion) − AUC(deletion) = the area between the LeRF and MoRF curves
  (both over the removed fraction; the trapezoid rule is symmetric under reversal).

f is the explained output (``attribution.output_indices``) in one of two **spaces**:

- ``"probability"`` (default; Petsiuk et al., RISE): f is the explained class's probability.
  Each perturbed image's scores become class probabilities — a row already in [0, 1] that sums
  to 1 (within 1e-4) is taken as probabilities as it is (models ending in a softmax), any other
  row is softmaxed (logits). Curves and AUCs are these probabilities, in [0, 1], unnormalised.
- ``"score"``: f is the backend's raw score (logits for the zoo CNNs), normalised as below.

Removed pixels (all channels) are filled by ``replacement``: the cell's masker by default, else
``"blur"``, ``"inpaint_telea"``, ``"inpaint_ns"``, any masker spec, ``"mean"`` (per-channel image
mean) or ``"zero"``; cells without a masker (deep, gradient) use ``fallback`` (blur).

**Normalisation** (score space, on by default there): each curve is mapped by
c ↦ (c − f(∅)) / |f(x) − f(∅)|, where f(∅) is the score of the fully replaced image; when the
replacement lowers the score (the usual case) deletion runs 1 → 0 and insertion 0 → 1. AUCs are
over the removed (or restored) fraction in [0, 1]. Both end points depend only on the image, the
output and the replacement — not on the attribution — so every explainer of one image goes
through the same *increasing* affine map: the order of explainers per image is never changed
(dividing by the signed difference would flip it where f(∅) > f(x)), while logit scales of
different images and models become comparable. When |f(x) − f(∅)| ≤ 1e-6·max(1, |f(x)|, |f(∅)|)
the replacement removes no evidence and the score is NaN; images where it removes little
evidence get large normalised values (heavy tails across images), which is why probability space
is the default. With ``normalise=False`` the score-space AUC is of the raw score (score units).

All k + 1 perturbed images of an image (of every kind and explained output) go through ONE
``backend.predict`` call; several images share a call up to ``max_batch_bytes`` of input.
Given a :class:`~xaibench.metrics.base.MetricContext`, the metrics compute each curve once per
cell (deletion, insertion and ABPC share them) and hand on the unnormalised curves as the
arrays :data:`CURVE_ARRAYS` (N, K, steps + 1), each with its space in :data:`CURVE_SPACES`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np

from xaibench.backend import Attribution, Backend
from xaibench.errors import ConfigError
from xaibench.metrics._ranking import check_images_match, descending_positions, pixel_relevance
from xaibench.metrics._replacement import check_replacement, make_filler
from xaibench.metrics.base import Metric, MetricContext

KINDS = ("deletion", "insertion")
SPACES = ("probability", "score")
#: names of the unnormalised curves (N, K, steps + 1) the metrics hand on to be stored with a cell
CURVE_ARRAYS = {kind: f"{kind}_curve" for kind in KINDS}
#: names of the 0-d string arrays stored with them: their space (absent in older stores: score)
CURVE_SPACES = {kind: f"{kind}_curve_space" for kind in KINDS}
#: default cap on the perturbed input of one predict call (at least one image always goes)
MAX_BATCH_BYTES = 256 * 2**20
_DEGENERATE_RTOL = 1e-6
_PROBABILITY_ATOL = 1e-4


def step_counts(n_pixels: int, steps: int) -> np.ndarray:
    """n_j = round(j · P / k) (half up) for j = 0..k: pixels removed after step j."""
    j = np.arange(steps + 1, dtype=np.int64)
    return (2 * j * n_pixels + steps) // (2 * steps)


def removal_masks(positions: np.ndarray, kind: str, steps: int) -> np.ndarray:
    """Removed pixels (..., k + 1, P) of every step, from most-relevant-first ``positions``."""
    n_pixels = positions.shape[-1]
    counts = step_counts(n_pixels, steps)
    pos = positions[..., None, :]
    if kind == "deletion":
        return pos < counts[:, None]
    return pos >= (n_pixels - counts[::-1])[:, None]


def class_probabilities(scores: np.ndarray) -> np.ndarray:
    """Class probabilities of (..., classes) ``scores``: rows already in [0, 1] that sum to 1
    (within 1e-4) are kept as they are, every other row is softmaxed."""
    scores = np.asarray(scores, dtype=np.float64)
    is_probability = (np.all((scores >= 0) & (scores <= 1), axis=-1, keepdims=True)
                      & (np.abs(scores.sum(axis=-1, keepdims=True) - 1) <= _PROBABILITY_ATOL))
    exp = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return np.where(is_probability, scores, exp / exp.sum(axis=-1, keepdims=True))


def perturbation_curves(backend: Backend, x: np.ndarray, attribution: Attribution, *,
                        kinds: Sequence[str] = KINDS, steps: int = 20,
                        replacement: str = "masker", masker: Any = None, fallback: str = "blur",
                        space: str = "probability",
                        max_batch_bytes: int = MAX_BATCH_BYTES) -> dict[str, np.ndarray]:
    """Unnormalised curves {kind: (N, K, steps + 1)} of the explained outputs in ``space``.

    ``masker`` is the cell's masker (a spec string or a shap-style masker object) used when
    ``replacement == "masker"``; ``fallback`` replaces it when it is None.
    """
    steps = _check_steps(steps)
    _check_space(space)
    if space == "probability" and backend.spec.n_classes < 2:
        raise ConfigError("probability space needs at least 2 classes; use space='score'")
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise ConfigError(f"curve kinds must be among {KINDS}; got {list(kinds)}")
    x = backend.spec.check(x)
    check_images_match(x, attribution)
    fill = make_filler(replacement, masker, fallback, backend.spec.shape)
    n, h, w, c = x.shape
    targets = attribution.output_indices
    positions = descending_positions(pixel_relevance(attribution.values))  # (N, K, P)
    per_image = len(kinds) * targets.shape[1] * (steps + 1)
    chunk = max(1, int(max_batch_bytes) // max(1, per_image * x.itemsize * h * w * c))
    curves = {kind: np.empty((n, targets.shape[1], steps + 1)) for kind in kinds}
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        batch = np.concatenate([fill(x[i], removal_masks(positions[i], kind, steps)
                                     .reshape(-1, h, w))
                                for i in range(start, stop) for kind in kinds])
        scores = backend.predict(batch)
        if space == "probability":
            scores = class_probabilities(scores)
        scores = scores.reshape(stop - start, len(kinds), -1, steps + 1,
                                                backend.spec.n_classes)
        rows = targets[start:stop, None, :, None, None]
        picked = np.take_along_axis(scores, rows, axis=-1)[..., 0]  # (rows, kinds, K, k + 1)
        for j, kind in enumerate(kinds):
            curves[kind][start:stop] = picked[:, j]
    return curves


def normalised_curves(curves: np.ndarray, kind: str) -> np.ndarray:
    """Curves (..., k + 1) mapped by c ↦ (c − f(∅)) / |f(x) − f(∅)|, NaN where the replacement
    removes no evidence; see the module notes."""
    _check_kind(kind)
    curves = np.asarray(curves, dtype=np.float64)
    first, last = curves[..., :1], curves[..., -1:]
    f_x, f_empty = (first, last) if kind == "deletion" else (last, first)
    span = np.abs(f_x - f_empty)
    ok = span > _DEGENERATE_RTOL * np.maximum(1.0, np.maximum(np.abs(f_x), np.abs(f_empty)))
    return np.where(ok, (curves - f_empty) / np.where(ok, span, 1.0), np.nan)


def curve_auc(curves: np.ndarray, kind: str, *, space: str = "probability",
              normalise: bool = True) -> np.ndarray:
    """Trapezoid AUC over the fraction [0, 1] of (..., k + 1) curves of ``space``; ``normalise``
    applies to score space only. See the module notes."""
    _check_kind(kind)
    _check_space(space)
    curves = np.asarray(curves, dtype=np.float64)
    if space == "score" and normalise:
        curves = normalised_curves(curves, kind)
    return np.trapezoid(curves, dx=1.0 / (curves.shape[-1] - 1), axis=-1)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"curve kind must be one of {KINDS}; got {kind!r}")


def _check_space(space: str) -> None:
    if space not in SPACES:
        raise ConfigError(f"curve space must be one of {SPACES}; got {space!r}")


def _check_steps(steps: Any) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ConfigError(f"steps must be an integer >= 1, got {steps!r}")
    return int(steps)


class _CurveMetric(Metric):
    """AUC-based faithfulness metric over :func:`perturbation_curves`."""

    category = "faithfulness"
    consumes = frozenset({"masker", "context"})
    kinds: ClassVar[tuple[str, ...]]

    def __init__(self, steps: int = 20, replacement: str = "masker", fallback: str = "blur",
                 space: str = "probability", normalise: bool = True) -> None:
        self.steps = _check_steps(steps)
        check_replacement(replacement, allow_masker=True)
        check_replacement(fallback, allow_masker=False)
        _check_space(space)
        self.replacement, self.fallback = replacement, fallback
        self.space, self.normalise = space, bool(normalise)

    def __call__(self, backend: Backend, x: np.ndarray, attribution: Attribution, *,
                 masker: Any = None, masks: np.ndarray | None = None,
                 context: MetricContext | None = None) -> np.ndarray:
        curves = self._curves(backend, x, attribution, masker, context)
        return self._score({kind: curve_auc(curves[kind], kind, space=self.space,
                                            normalise=self.normalise)
                            for kind in self.kinds})

    def _curves(self, backend: Backend, x: np.ndarray, attribution: Attribution, masker: Any,
                context: MetricContext | None) -> dict[str, np.ndarray]:
        """The unnormalised curves of :attr:`kinds`; with a ``context``, those it lacks are
        computed (in one :func:`perturbation_curves` call), memoised, and all are handed on
        with their space."""
        memo = {} if context is None else context.memo
        key = {kind: ("perturbation_curves", kind, self.steps, self.replacement, self.fallback,
                      self.space)
               for kind in self.kinds}
        missing = tuple(kind for kind in self.kinds if key[kind] not in memo)
        if missing:
            computed = perturbation_curves(backend, x, attribution, kinds=missing,
                                           steps=self.steps, replacement=self.replacement,
                                           masker=masker, fallback=self.fallback,
                                           space=self.space)
            memo.update((key[kind], curve) for kind, curve in computed.items())
        curves = {kind: memo[key[kind]] for kind in self.kinds}
        if context is not None:
            for kind, curve in curves.items():
                context.keep(CURVE_ARRAYS[kind], curve)
                context.keep(CURVE_SPACES[kind], np.array(self.space))
        return curves

    @staticmethod
    def _score(aucs: dict[str, np.ndarray]) -> np.ndarray:
        """The metric from the AUCs of its curve kinds."""
        (auc,) = aucs.values()
        return auc


class DeletionAUC(_CurveMetric):
    """Area under the deletion (MoRF) curve; lower = the top pixels carry the evidence."""

    name = "deletion_auc"
    higher_is_better = False
    kinds = ("deletion",)


class InsertionAUC(_CurveMetric):
    """Area under the insertion curve (most relevant restored first); higher is better."""

    name = "insertion_auc"
    higher_is_better = True
    kinds = ("insertion",)


class ABPC(_CurveMetric):
    """Area between the LeRF and MoRF curves, AUC(insertion) − AUC(deletion); higher is better."""

    name = "abpc"
    higher_is_better = True
    kinds = ("deletion", "insertion")

    @staticmethod
    def _score(aucs: dict[str, np.ndarray]) -> np.ndarray:
        return aucs["insertion"] - aucs["deletion"]
