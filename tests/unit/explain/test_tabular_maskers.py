"""Tabular maskers (independent, partition) on rows (1, F, 1), and validation refusing maskers,
rulers and explainers for the wrong kind of data.

Oracle: for a linear model f(x) = w·x + b, interventional SHAP over background rows B is
exactly φ_i = w_i (x_i − mean_B x_i), base f(mean_B x), for every permutation and every
coalition tree (marginal contributions of a linear model do not depend on the coalition).
"""

from __future__ import annotations

import numpy as np
import pytest

from xaibench.backend import ImageSpec
from xaibench.errors import ConfigError
from xaibench.experiment.config import config_from_dict
from xaibench.explain.maskers import make_masker
from xaibench.testing import LinearBackend

SPEC = ImageSpec((1, 5, 1), ("y",), value_range=(-5.0, 5.0), feature_names=tuple("abcde"),
                 task="regression")


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 1, 5, 1)).astype(np.float32)
    background = rng.normal(size=(40, 1, 5, 1)).astype(np.float32)
    background[:, 0, 1, 0] = background[:, 0, 0, 0] * 0.9  # correlated features: a real tree
    return x, background


@pytest.mark.parametrize("explainer, masker, params", [
    ("permutation", "independent", {}), ("permutation", "partition", {}),
    ("partition", "partition", {"max_evals": 500})])
def test_linear_model_gets_interventional_shap(explainer, masker, params, rows):
    x, background = rows
    backend = LinearBackend.from_zoo("linear", SPEC, seed=1)
    attribution = backend.explain(explainer, x, 1,
                                  masker=make_masker(masker, SPEC.shape, background), **params)
    mean = background.astype(np.float64).mean(axis=0)
    expected = backend.weights[:, 0].reshape(1, 5, 1) * (x.astype(np.float64) - mean)
    np.testing.assert_allclose(attribution.values[..., 0], expected, atol=1e-5)
    np.testing.assert_allclose(attribution.base_values[:, 0],
                               backend.scores64(mean[None])[0, 0], atol=1e-5)
    assert attribution.additivity_gap().max() < 1e-5


def test_tabular_masker_needs_background_rows(rows):
    with pytest.raises(ConfigError, match=r"a tabular masker needs background rows"):
        make_masker("independent", (1, 5, 1))
    with pytest.raises(ConfigError, match=r"background must be rows of shape \(B, 1, 5, 1\)"):
        make_masker("partition", (1, 5, 1), background=np.zeros((4, 5)))
    with pytest.raises(ConfigError, match=r"tabular maskers take rows of shape \(1, F, 1\)"):
        make_masker("independent", (4, 4, 1), background=rows[1])
    assert make_masker("partition", (1, 5, 1), background=rows[1]).clustering is not None


def _config(dataset: str, explainers: list[dict], **top) -> dict:
    return {"name": "t", "dataset": {"name": dataset},
            "models": [{"backend": "torch", "architecture": "tabular_mlp"}],
            "explainers": explainers, **top}


@pytest.mark.parametrize("config, message", [
    (_config("breast_cancer", [{"name": "partition", "maskers": ["blur(2,2)"]}]),
     r"\[\[explainers\]\] #1 \(partition\): masker 'blur' does not apply to tabular rows; use "
     r"one of constant, independent, partition$"),
    (_config("digits", [{"name": "permutation", "maskers": ["independent"]}]),
     r"masker 'independent' does not apply to images; use one of blur, constant, inpaint_ns, "
     r"inpaint_telea, noisy_linear$"),
    (_config("breast_cancer", [{"name": "partition", "maskers": ["independent"]}]),
     r"explainer 'partition' needs a masker with a partition tree over the features, which "
     r"'independent' has not; use one of constant, partition$"),
    (_config("breast_cancer", [{"name": "gradcam"}]),
     r"explainer 'gradcam' does not apply to tabular rows; use one of deep, gradient, "
     r"partition, permutation, random, tree$"),
    (_config("breast_cancer", [{"name": "permutation", "maskers": ["independent"],
                                "params": {"patch": 2}}]),
     r"#1 \(permutation\): patch groups neighbouring pixels into superpixels, but the dataset "
     r"has tabular rows of 30 features; remove patch$"),
    (_config("breast_cancer", [{"name": "deep"}], evaluation={"rulers": ["inpaint_telea"]}),
     r"\[evaluation\] rulers: 'inpaint_telea' does not apply to tabular rows; use one of "
     r"constant, zero$"),
    (_config("breast_cancer", [{"name": "deep"}], evaluation={"rulers": ["mean"]}),
     r"'mean' does not apply to tabular rows"),
    (_config("diabetes", [{"name": "deep"}], metrics=["abpc"]),
     r"\[metric_params\] abpc: dataset 'diabetes' is a regression \(one output\).*"
     r"abpc = \{ space = \"score\", normalise = false \}"),
])
def test_validation_refuses_what_does_not_apply(config, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(config)


def test_tabular_defaults_and_accepted_grid():
    config = config_from_dict(_config(
        "diabetes", [{"name": "deep"}, {"name": "permutation", "maskers": ["independent"]},
                     {"name": "partition", "maskers": ["partition(max_samples=20)"]}],
        metrics=["deletion_auc"],
        metric_params={"deletion_auc": {"space": "score", "normalise": False}}))
    assert config.evaluation.rulers == ("zero",)
    assert config.explainers[2].maskers == ("partition(max_samples=20)",)
    with pytest.raises(ConfigError, match=r"background is supplied by the runner"):
        config_from_dict(_config("diabetes", [{"name": "permutation",
                                               "maskers": ["independent(background=1)"]}]))


def test_regression_rows_are_not_chosen_by_correctness():
    with pytest.raises(ConfigError, match=r"\[images\]: dataset 'diabetes' is a regression, "
                                          r"whose predictions are not right or wrong"):
        config_from_dict(_config("diabetes", [{"name": "deep"}], images={"wrong": 2}))


def test_metrics_replacing_features_need_a_tabular_fill():
    config = _config("breast_cancer", [{"name": "deep"}], metrics=["faithfulness_correlation"])
    with pytest.raises(ConfigError, match=r"\[metric_params\] faithfulness_correlation: "
                                          r"replacement 'masker' does not apply to tabular rows; "
                                          r"set faithfulness_correlation = \{ replacement = "
                                          r"\"zero\" \}"):
        config_from_dict(config)
    config_from_dict({**config, "metric_params": {
        "faithfulness_correlation": {"replacement": "zero"}}})
