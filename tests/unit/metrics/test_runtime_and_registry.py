"""Cost metrics from the record, and the registered metric catalogue."""

from __future__ import annotations

import numpy as np

from xaibench.backend import Attribution
from xaibench.metrics import EvalsPerImage, Metric, SecondsPerImage
from xaibench.registry import metrics

EXPECTED = {  # name -> (higher_is_better, category, consumes ground-truth masks)
    "additivity": (False, "correctness", False),
    "deletion_auc": (False, "faithfulness", False),
    "insertion_auc": (True, "faithfulness", False),
    "abpc": (True, "faithfulness", False),
    "gini": (True, "complexity", False),
    "entropy": (False, "complexity", False),
    "mprt": (False, "randomisation", False),
    "relevance_mass": (True, "localisation", True),
    "relevance_rank": (True, "localisation", True),
    "pointing_game": (True, "localisation", True),
    "max_sensitivity": (False, "robustness", False),
    "faithfulness_correlation": (True, "faithfulness", False),
    "infidelity": (False, "faithfulness", False),
    "smprt": (False, "randomisation", False),
    "emprt": (True, "randomisation", False),
    "seconds_per_image": (False, "cost", False),
    "evals_per_image": (False, "cost", False),
}


def test_cost_per_image_from_the_record():
    attribution = Attribution("test", np.zeros((4, 2, 2, 1, 3)), np.zeros((4, 3), np.int64),
                              np.zeros((4, 3)), np.zeros((4, 3)), wall_seconds=2.0,
                              model_evals=1000)
    np.testing.assert_allclose(SecondsPerImage()(None, None, attribution), np.full((4, 3), 0.5))
    np.testing.assert_allclose(EvalsPerImage()(None, None, attribution), np.full((4, 3), 250.0))


def test_every_metric_is_registered_with_its_direction():
    assert set(metrics) == set(EXPECTED)
    for name, (higher, category, needs_masks) in EXPECTED.items():
        cls = metrics.get(name)
        metric = cls()  # the runner builds metrics from their names alone
        assert isinstance(metric, Metric) and cls.name == name
        assert (cls.higher_is_better, cls.category, "masks" in cls.consumes) == (
            higher, category, needs_masks)
    assert {n for n in metrics if "explain_params" in metrics.get(n).consumes} \
        == {"mprt", "smprt", "emprt", "max_sensitivity"}


def test_import_loads_no_framework():
    import subprocess
    import sys

    code = ("import sys, xaibench.metrics, xaibench.registry as r; "
            "[r.metrics.get(n) for n in r.metrics]; "
            "print([m for m in ('torch', 'tensorflow', 'jax', 'shap', 'cv2') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"



def test_additivity_is_not_applicable_to_explainers_declared_not_additive():
    from xaibench.metrics import AdditivityGap
    from xaibench.registry import explainers

    assert {name for name in explainers if not explainers.entry(name).additive} == {
        "random", "edge", "cam", "gradcam", "gradcam_pp"}
    values = np.ones((2, 2, 2, 1, 1))
    for method, expected in (("gradcam", np.full((2, 1), np.nan)),
                             ("partition", np.full((2, 1), 3.0))):  # |4 - (1 - 0)|
        attribution = Attribution(method, values, np.zeros((2, 1), np.int64), np.zeros((2, 1)),
                                  np.ones((2, 1)), wall_seconds=1.0, model_evals=0)
        np.testing.assert_array_equal(AdditivityGap()(None, None, attribution), expected)
