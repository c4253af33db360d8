"""Faithfulness: deletion (MoRF) and insertion curves, their AUCs, and ABPC (SRG).

Conventions (P pixels, ``steps`` = k, pixel relevance r = Σ_c φ, ranked most relevant first,
ties in raster order; ``n_j = round(j·P/k)`` half up, so n_0 = 0 and n_k = P):

- **deletion** (MoRF): point j is f(x with its n_j *most* relevant pixels replaced); it starts
  at f(x) and ends at f(fully replaced). A faithful attribution makes it fall fast (lower AUC).
- **insertion**: point j is f(x with only its P − n_{k−j} most relevant pixels kept, the rest
  replaced) — it starts from the fully replaced image and restores the most relevant pixels
  first, ending at f(x). Read backwards it is *exactly* the LeRF curve (the n_{k−j} least
  relevant pixels removed at removal step k − j). A faithful attribution makes it rise fast.
- **ABPC** = AUC(insertion) − AUC(deletion) = the area between the LeRF and MoRF curves
  (both over the removed fraction; the trapezoid rule is symmetric under reversal). It is the
  *symmetric relevance gain* SRG = AUC(LeRF) − AUC(MoRF) of Blücher, Vielhaben and Strodthoff
  ("Decoupling pixel flipping and occlusion strategy for consistent XAI benchmarks", TMLR 2024),
  who show that its ranking of explainers, unlike that of MoRF or LeRF alone, is stable across
  occlusion strategies.

f is the explained output (``attribution.output_indices``) in one of two **spaces**:

- ``"probability"`` (default; Petsiuk et al., RISE): f is the explained class's probability.
  Each perturbed image's scores become class probabilities — a row already in [0, 1] that sums
  to 1 (within 1e-4) is taken as probabilities as it is (models ending in a softmax), any other
  row is softmaxed (logits). Curves and AUCs are these probabilities, in [0, 1], unnormalised.
- ``"score"``: f is the backend's raw score (logits for the zoo CNNs), normalised as below.

Removed pixels (all channels) are filled by ``replacement``: the cell's masker by default, else
``"blur"``, ``"inpaint_telea"``, ``"inpaint_ns"``, ``"noisy_linear"`` (ROAD), any masker spec,
``"mean"`` (per-channel image mean) or ``"zero"``; cells without a masker (deep, gradient) use
``fallback`` (blur). In an experiment the replacement is a *ruler* (``[evaluation] rulers``,
declared by ``"ruler"`` in ``consumes``): every cell is scored under every ruler, so all rows
of a table are measured alike, and an explainer is not favoured by being scored with the
perturbation it explained with.

**Normalisation** (score space, on by default there): each curve is mapped by
c ↦ (c − f(∅)) / S(x), where f(∅) is the explained score of the fully replaced image and
S(x) = max_k f_k(x) − min_k f_k(x) is the spread of the model's scores over all its outputs on
the *unperturbed* image. When the replacement lowers the score deletion runs from
(f(x) − f(∅)) / S(x) > 0 down to 0 and insertion back up. AUCs are over the removed (or
restored) fraction in [0, 1]. f(∅) and S(x) depend only on the image, the output and the
replacement — not on the attribution — so every explainer of one image goes through the same
*increasing* affine map: the order of explainers per image never changes, while logit scales of
different images and models become comparable. S(x) is large whenever the model discriminates
between its classes on x, so the map cannot blow up for a model that has learned anything; an
image where S(x) ≤ 1e-6·max(1, max_k |f_k(x)|) (the model returns the same score for every
class) has no scale and its scores are NaN — stored as NULL, counted as undefined in the
report. Single-output models have no spread: their score-space metrics need
``normalise=False``, the AUC of the raw score (score units).

Why not |f(x) − f(∅)|, the denominator used before: it is how much the replacement moves the
explained score, which can be arbitrarily close to 0 where blurring barely changes a logit. On
the trained test CNN (synthetic 16×16, accuracy 0.94, blur(4,4)) the per-image score-space
ABPC of deep was 1.2–2 on most images and −1678.8, +136.7 and +119.0 on three of them (random:
+145.4 on one), so the mean ABPC was −84.96 for deep against +13.26 for random while the
probability-space values were sane (deep 0.39 … 0.81, random −0.43 … 0.32); a different CPU's
round-off moved another image across the cliff. Normalising by the range of each curve instead
would depend on the attribution and could reorder explainers of an image.

All k + 1 perturbed images of an image (of every kind and explained output) go through ONE
``backend.predict`` call; several images share a call up to ``max_batch_bytes`` of input.
Given a :class:`~xaibench.metrics.base.MetricContext`, the metrics compute each curve once per
cell and replacement (deletion, insertion and ABPC share them) and hand on the unnormalised
curves as the arrays :func:`curve_array` (N, K, steps + 1), each with its space in
:func:`curve_space_array`, and score-space ones with the spreads S(x) (N,) as :data:`SCORE_SPREAD_ARRAY` (NaN where
undefined), from which the normalised curves are recomputed.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np

from xaibench.backend import Attribution, Backend
from xaibench.errors import ConfigError, XaibenchError
from xaibench.metrics._ranking import check_images_match, descending_positions, pixel_relevance
from xaibench.metrics._replacement import check_replacement, make_filler
from xaibench.metrics.base import Metric, MetricContext, check_count

KINDS = ("deletion", "insertion")
SPACES = ("probability", "score")
#: names of the unnormalised curves (N, K, steps + 1) the metrics hand on to be stored with a
#: cell, with the cell's masker as replacement (others: :func:`curve_array`)
CURVE_ARRAYS = {kind: f"{kind}_curve" for kind in KINDS}
#: names of the 0-d string arrays stored with them: their space (absent in older stores: score)
CURVE_SPACES = {kind: f"{kind}_curve_space" for kind in KINDS}
#: name of the (N,) array of score spreads S(x) handed on with score-space curves
SCORE_SPREAD_ARRAY = "score_spread"
#: default cap on the perturbed input of one predict call (at least one image always goes)
MAX_BATCH_BYTES = 256 * 2**20
_DEGENERATE_RTOL = 1e-6
_PROBABILITY_ATOL = 1e-4


def curve_array(kind: str, replacement: str = "masker") -> str:
    """Stored name of the ``kind`` curves under ``replacement``: "deletion_curve" for the
    cell's masker, "deletion_curve@blur(8,8)" for a ruler."""
    return CURVE_ARRAYS[kind] + ("" if replacement == "masker" else f"@{replacement}")


def curve_space_array(kind: str, replacement: str = "masker") -> str:
    """Stored name of the space of :func:`curve_array`."""
    return CURVE_SPACES[kind] + ("" if replacement == "masker" else f"@{replacement}")


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
    steps = check_count("steps", steps, 1)
    check_space(space)
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


def score_spread(scores: np.ndarray) -> np.ndarray:
    """S(x) = max_k f_k(x) − min_k f_k(x) of (N, classes) scores of unperturbed images, NaN
    where S(x) ≤ 1e-6·max(1, max_k |f_k(x)|); see the module notes."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ConfigError(f"score-space normalisation divides by the spread of a model's scores "
                          f"over its outputs, and scores of shape {scores.shape} have no "
                          f"spread; use normalise=False (raw scores) or a model with >= 2 "
                          f"outputs")
    spread = np.ptp(scores, axis=1)
    scale = np.maximum(1.0, np.abs(scores).max(axis=1))
    return np.where(spread > _DEGENERATE_RTOL * scale, spread, np.nan)


def normalised_curves(curves: np.ndarray, kind: str, spread: np.ndarray) -> np.ndarray:
    """Curves (N, ..., k + 1) mapped by c ↦ (c − f(∅)) / S(x), with ``spread`` the (N,) S(x) of
    :func:`score_spread` (NaN where undefined); see the module notes."""
    _check_kind(kind)
    curves = np.asarray(curves, dtype=np.float64)
    spread = np.asarray(spread, dtype=np.float64)
    if spread.shape != curves.shape[:1]:
        raise XaibenchError(f"one spread per image is needed: spread {spread.shape} for curves "
                            f"{curves.shape}")
    f_empty = curves[..., -1:] if kind == "deletion" else curves[..., :1]
    return (curves - f_empty) / spread.reshape(-1, *[1] * (curves.ndim - 1))


def curve_auc(curves: np.ndarray, kind: str, *, space: str = "probability",
              spread: np.ndarray | None = None) -> np.ndarray:
    """Trapezoid AUC over the fraction [0, 1] of (N, ..., k + 1) curves of ``space``; score
    curves are normalised by their images' ``spread`` when given (see the module notes)."""
    _check_kind(kind)
    check_space(space)
    curves = np.asarray(curves, dtype=np.float64)
    if spread is not None:
        if space != "score":
            raise XaibenchError("spread normalises score-space curves only; "
                                "probability curves are used as they are")
        curves = normalised_curves(curves, kind, spread)
    return np.trapezoid(curves, dx=1.0 / (curves.shape[-1] - 1), axis=-1)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"curve kind must be one of {KINDS}; got {kind!r}")


def check_space(space: str, what: str = "curve space") -> None:
    """ConfigError unless ``space`` (called ``what`` in the message) is one of :data:`SPACES`."""
    if space not in SPACES:
        raise ConfigError(f"{what} must be one of {SPACES}; got {space!r}")


class _CurveMetric(Metric):
    """AUC-based faithfulness metric over :func:`perturbation_curves`."""

    category = "faithfulness"
    #: ``ruler``: the runner scores it once per ruler, passed as ``replacement``
    consumes = frozenset({"masker", "context", "ruler"})
    kinds: ClassVar[tuple[str, ...]]

    def __init__(self, steps: int = 20, replacement: str = "masker", fallback: str = "blur",
                 space: str = "probability", normalise: bool = True) -> None:
        self.steps = check_count("steps", steps, 1)
        check_replacement(replacement, allow_masker=True)
        check_replacement(fallback, allow_masker=False)
        check_space(space)
        self.replacement, self.fallback = replacement, fallback
        self.space, self.normalise = space, bool(normalise)

    def __call__(self, backend: Backend, x: np.ndarray, attribution: Attribution, *,
                 masker: Any = None, masks: np.ndarray | None = None,
                 context: MetricContext | None = None) -> np.ndarray:
        curves = self._curves(backend, x, attribution, masker, context)
        spread = self._spread(backend, x, context) \
            if self.space == "score" and self.normalise else None
        return self._score({kind: curve_auc(curves[kind], kind, space=self.space, spread=spread)
                            for kind in self.kinds})

    def _curves(self, backend: Backend, x: np.ndarray, attribution: Attribution, masker: Any,
                context: MetricContext | None) -> dict[str, np.ndarray]:
        """The unnormalised curves of :attr:`kinds`; with a ``context``, those it lacks are
        computed (in one :func:`perturbation_curves` call), memoised, and all are handed on
        with their space (score-space ones with the spreads of :meth:`_spread`)."""
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
                context.keep(curve_array(kind, self.replacement), curve)
                context.keep(curve_space_array(kind, self.replacement), np.array(self.space))
            if self.space == "score" and backend.spec.n_classes >= 2:
                context.keep(SCORE_SPREAD_ARRAY, self._spread(backend, x, context))
        return curves

    @staticmethod
    def _spread(backend: Backend, x: np.ndarray, context: MetricContext | None) -> np.ndarray:
        """S(x) (N,) of :func:`score_spread` from one predict call, memoised in ``context``."""
        memo = {} if context is None else context.memo
        if "score_spread" not in memo:
            memo["score_spread"] = score_spread(backend.predict(backend.spec.check(x)))
        return memo["score_spread"]

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
    """Symmetric relevance gain SRG = AUC(LeRF) − AUC(MoRF) = AUC(insertion) − AUC(deletion),
    the area between the LeRF and MoRF curves (ABPC; Blücher et al., TMLR 2024); higher is
    better."""

    name = "abpc"
    higher_is_better = True
    kinds = ("deletion", "insertion")

    @staticmethod
    def _score(aucs: dict[str, np.ndarray]) -> np.ndarray:
        return aucs["insertion"] - aucs["deletion"]
