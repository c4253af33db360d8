"""Task-aware model evaluation: R² and RMSE for regression (hand-computed), the headline score
and the models table showing R² instead of accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from xaibench.experiment.checkpoints import evaluate
from xaibench.experiment.store import headline_score


def test_regression_evaluation_by_hand():
    labels = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    scores = np.array([[1.5], [2.0], [2.0], [4.5]], np.float32)
    evaluation = evaluate(labels, scores, ("y",), task="regression", target_scale=(10.0, 2.0))
    # SSE = 0.25 + 0 + 1 + 0.25 = 1.5; SST = 5 (mean 2.5); RMSE = sqrt(1.5 / 4)
    assert evaluation["r2"] == pytest.approx(1 - 1.5 / 5)
    assert evaluation["rmse"] == pytest.approx(np.sqrt(0.375))
    assert evaluation["rmse_original"] == pytest.approx(2 * np.sqrt(0.375))
    assert "accuracy" not in evaluation and evaluation["n_test"] == 4
    assert evaluation["target_scale"] == [10.0, 2.0]
    assert headline_score(evaluation) == ("r2", pytest.approx(0.7))
    classified = evaluate(np.array([0, 1]), np.array([[2.0, 1.0], [0.0, 1.0]]), ("a", "b"))
    assert headline_score(classified) == ("accuracy", 1.0)
    assert headline_score({"accuracy": 0.5}) == ("accuracy", 0.5)  # older stores: no task


def test_models_table_shows_r2_for_regression_models():
    import pandas as pd

    from xaibench.report._formats import MarkdownWriter
    from xaibench.report.tables import _with_r2, show_models

    models = _with_r2(pd.DataFrame({
        "dataset": ["diabetes"], "backend": ["torch"], "architecture": ["tabular_mlp"],
        "seed": [0], "accuracy": [np.nan], "train_seconds": [1.0], "params": [""],
        "weights_from": [None], "evaluation": [{"task": "regression", "r2": 0.42}]}))
    shown = show_models(models, MarkdownWriter.notation)
    assert "R2" in shown.cells.columns and "accuracy" not in shown.cells.columns
    assert shown.cells["R2"].tolist() == ["0.420"]
    images = _with_r2(models.drop(columns="r2").assign(
        evaluation=[{"task": "classification", "accuracy": 0.9}]))
    assert "r2" not in images
