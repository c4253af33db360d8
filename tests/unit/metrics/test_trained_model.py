"""Metrics on a really trained CNN: real explainers must beat the random floor.

Data, model, training and the random explainer take their seed from ``test_seed``
(``XAIBENCH_TEST_SEED``). Assertions are on robust per-image statistics with margins measured
on seeds 0, 1 and 2 under OMP_NUM_THREADS=1 and =2 (identical results for both thread counts).
"""

from __future__ import annotations

import numpy as np
import pytest

from xaibench.data import synthetic
from xaibench.metrics import (ABPC, DeletionAUC, FaithfulnessCorrelation, Infidelity,
                              PointingGame, RelevanceMass)

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def trained(test_seed):
    from backends.torch_backend import TorchBackend

    data = synthetic.load(n_train=1200, n_test=16, size=16, seed=test_seed)
    backend = TorchBackend.from_zoo("fmnist_cnn", data.spec, seed=test_seed)
    backend.fit(data.x_train, data.y_train, epochs=6, batch_size=32, lr=3e-3, seed=test_seed)
    accuracy = (backend.predict(data.x_test).argmax(axis=1) == data.y_test).mean()
    # measured on seeds 0, 1, 2: 0.94, 1.00, 1.00
    assert accuracy >= 0.8, f"the test model must learn the task (accuracy {accuracy:.2f})"
    return backend, data


@pytest.fixture(scope="module")
def attributions(trained, test_seed):
    backend, data = trained
    x, background = data.x_test, data.x_train[:20]
    return {
        "deep": backend.explain("deep", x, 1, background=background),
        "partition": backend.explain("partition", x, 1, masker="blur(4,4)", max_evals=400),
        "random": backend.explain("random", x, 1, seed=test_seed),
        "edge": backend.explain("edge", x, 1),
    }


def _per_image(metric, trained, attribution, **kwargs) -> np.ndarray:
    backend, data = trained
    return metric(backend, data.x_test, attribution, **kwargs)[:, 0]


#: (metric, space) -> (required gain of the median over images over random's, required
#: fraction of the 16 images where the explainer beats random on that image). Measured on seeds
#: 0 / 1 / 2 (deep; partition), gain of the median and fraction:
#:   ABPC score        0.46 0.45 0.36; 0.37 0.31 0.35 | 0.88 1.00 1.00; 1.00 1.00 1.00
#:   ABPC probability  0.35 0.86 0.49; 0.27 0.80 0.55 | 0.88 1.00 1.00; 1.00 1.00 1.00
#:   deletion score    0.09 0.29 0.08; 0.09 0.13 0.08 | 1.00 1.00 0.94; 1.00 1.00 0.88
#:   deletion prob.    0.15 0.48 0.18; 0.12 0.45 0.19 | 0.94 1.00 1.00; 1.00 0.94 0.94
#: A second random explainer (seed + 1) against random: gains -0.06 … 0.08, fractions
#: 0.38 … 0.56, so it fails every row. Before the score normalisation by the spread of the
#: model's scores, seed 0 gave a score-space ABPC mean of -84.96 for deep (one image -1678.8).
MARGINS = {("abpc", "score"): (0.15, 0.75), ("abpc", "probability"): (0.12, 0.75),
           ("deletion_auc", "score"): (0.03, 0.75), ("deletion_auc", "probability"): (0.05, 0.75)}
METRICS = {"abpc": ABPC, "deletion_auc": DeletionAUC}


@pytest.mark.parametrize("metric, space", sorted(MARGINS))
@pytest.mark.parametrize("method", ["deep", "partition"])
def test_explainers_are_more_faithful_than_random(trained, attributions, method, metric, space):
    median_margin, min_fraction = MARGINS[metric, space]
    scorer = METRICS[metric](space=space)
    sign = 1 if scorer.higher_is_better else -1
    ours, floor = (sign * _per_image(scorer, trained, attributions[name], masker="blur(4,4)")
                   for name in (method, "random"))
    assert not np.isnan(ours).any() and not np.isnan(floor).any()
    gain, fraction = np.median(ours) - np.median(floor), np.mean(ours > floor)
    assert gain > median_margin and fraction >= min_fraction, (gain, fraction)


@pytest.mark.parametrize("method", ["deep", "partition"])
def test_explainers_localise_the_pattern_better_than_random(trained, attributions, method):
    # both scores lie in [0, 1]: one image moves a mean over 16 by at most 1/16. Measured gain
    # of the mean over random on seeds 0 / 1 / 2 (deep; partition): relevance mass 0.41 0.27
    # 0.41; 0.41 0.26 0.40, pointing game 0.56 0.94 0.69; 0.69 0.41 0.50 (second random: 0.00)
    masks = trained[1].masks_test
    for metric in (RelevanceMass(), PointingGame()):
        ours = np.nanmean(_per_image(metric, trained, attributions[method], masks=masks))
        floor = np.nanmean(_per_image(metric, trained, attributions["random"], masks=masks))
        assert ours > floor + 0.15, (metric.name, ours, floor)


#: (metric, floor) -> (required gain of the median over images over the floor's, required
#: fraction of the 16 images where the explainer beats the floor). Measured on seeds 0 / 1 / 2
#: (deep; partition), blur(4,4) removals, the metric's seed = the test seed:
#:   faithfulness corr. vs random  0.78 0.75 0.77; 0.57 0.56 0.49 | 0.88 1.00 0.88; 0.94 0.88 1.00
#:   faithfulness corr. vs edge    0.55 0.60 0.67; 0.33 0.41 0.39 | 0.62 0.94 0.88; 0.75 0.94 0.94
#:   infidelity vs random (gain in squared logits: the scale differs between models)
#:                                 0.01 0.22 0.17; 0.02 0.24 0.18 | 0.81 0.94 0.81; 0.88 1.00 0.88
#: Medians: faithfulness correlation deep 0.75 0.81 0.84, partition 0.53 0.62 0.56, random
#: -0.04 0.06 0.07, edge 0.20 0.21 0.18.
FIDELITY_MARGINS = {("faithfulness_correlation", "random"): (0.3, 0.75),
                    ("faithfulness_correlation", "edge"): (0.15, 0.5),
                    ("infidelity", "random"): (0.0, 0.7)}
FIDELITY_METRICS = {"faithfulness_correlation": FaithfulnessCorrelation,
                    "infidelity": Infidelity}


@pytest.mark.parametrize("metric, floor", sorted(FIDELITY_MARGINS))
@pytest.mark.parametrize("method", ["deep", "partition"])
def test_explainers_beat_the_model_free_baselines_on_removal_fidelity(trained, attributions,
                                                                      test_seed, method, metric,
                                                                      floor):
    median_margin, min_fraction = FIDELITY_MARGINS[metric, floor]
    scorer = FIDELITY_METRICS[metric](seed=test_seed)
    sign = 1 if scorer.higher_is_better else -1
    ours, base = (sign * _per_image(scorer, trained, attributions[name], masker="blur(4,4)")
                  for name in (method, floor))
    assert not np.isnan(ours).any() and not np.isnan(base).any()
    gain, fraction = np.median(ours) - np.median(base), np.mean(ours > base)
    assert gain > median_margin and fraction >= min_fraction, (gain, fraction)
