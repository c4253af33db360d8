"""Metrics: each a class with ``name``, ``higher_is_better``, ``category``; (N, K) scores.

Every metric reads the pixel relevance r = Σ_c φ (channels summed); magnitude-based ones use |r|.
What a metric takes besides backend, images and attribution is declared in its ``consumes``
(:data:`xaibench.metrics.base.METRIC_INPUTS`): e.g. ``masks`` (ground-truth masks), or
``explain_params`` (mprt, smprt, emprt, max_sensitivity re-explain with the full params given to
``backend.explain``; the record drops array params such as the background).
"""

from xaibench.metrics.additivity import AdditivityGap
from xaibench.metrics.agreement import agreement_matrix, spearman_agreement, topk_iou
from xaibench.metrics.base import Metric
from xaibench.metrics.complexity import Entropy, Gini, entropy, gini
from xaibench.metrics.fidelity import FaithfulnessCorrelation, Infidelity, removal_effects
from xaibench.metrics.faithfulness import (ABPC, DeletionAUC, InsertionAUC, curve_auc,
                                           perturbation_curves)
from xaibench.metrics.localisation import (PointingGame, RelevanceMass, RelevanceRank,
                                           pointing_game, relevance_mass, relevance_rank)
from xaibench.metrics.randomisation import (MPRT, EfficientMPRT, SmoothMPRT, discrete_entropy,
                                            mprt_curve, smooth_mprt_curve)
from xaibench.metrics.robustness import MaxSensitivity
from xaibench.metrics.runtime import EvalsPerImage, SecondsPerImage

__all__ = ["ABPC", "AdditivityGap", "DeletionAUC", "EfficientMPRT", "Entropy", "EvalsPerImage",
           "FaithfulnessCorrelation", "Gini", "Infidelity", "InsertionAUC", "MPRT",
           "MaxSensitivity", "Metric", "PointingGame", "RelevanceMass", "RelevanceRank",
           "SecondsPerImage", "SmoothMPRT", "agreement_matrix", "curve_auc", "discrete_entropy",
           "entropy", "gini", "mprt_curve", "perturbation_curves", "pointing_game",
           "relevance_mass", "relevance_rank", "removal_effects", "smooth_mprt_curve",
           "spearman_agreement", "topk_iou"]
