"""experiments/tabular.toml runs end to end, reduced to a torch model trained a few epochs and
the random forest, a handful of rows and small budgets: every cell finishes, SHAP values add up, the models table
shows the regression R² (not an accuracy) and the report renders."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

EXPERIMENT = Path(__file__).parents[2] / "experiments" / "tabular.toml"


def test_tabular_experiment_reduced(tmp_path, cache):
    import xaibench
    from xaibench.report import render

    config = tomllib.loads(EXPERIMENT.read_text())
    config.update(output=str(tmp_path / "results"))
    config["dataset"].update(n_background=5)
    config["images"] = {"first": 3}
    forest = next(model for model in config["models"] if model["backend"] == "sklearn")
    config["models"] = [{**config["models"][0],
                         "train": {"epochs": 5, "batch_size": 32, "lr": 1e-2}}, forest]
    small = {"gradient": {"nsamples": 10}, "permutation": {}, "partition": {"max_evals": 30}}
    for explainer in config["explainers"]:
        if explainer["name"] in small:
            explainer["params"] = small[explainer["name"]]
    results = xaibench.run(config, progress=False, cache_dir=cache)
    assert not results.summary.failures
    cells = results.cells
    mlp = [("deep", ""), ("gradient", ""), ("partition", "partition"),
           ("permutation", "independent"), ("permutation", "partition"), ("random", "")]
    for backend, expected in (("torch", mlp), ("sklearn", [*mlp[2:], ("tree", "")])):
        own = cells[cells["backend"] == backend]
        assert sorted(zip(own["explainer"], own["masker"])) == expected, backend
    for cell in cells.itertuples():
        attribution = results.attribution(cell.cell_key)
        assert attribution.values.shape == (3, 1, 10, 1, 1)
        if cell.explainer in ("deep", "partition", "permutation", "tree"):
            assert attribution.additivity_gap().max() < 1e-4, cell.explainer
    models = results.models
    assert models["accuracy"].isna().all() and (models["r2"] > 0.1).all()
    board = results.leaderboard
    assert {"abpc@zero_mean", "deletion_auc@zero_mean"} <= set(board.columns)
    assert np.isfinite(board["abpc@zero_mean"]).all()
    written = render(results.root, ["md"])
    report = next(path for path in written if path.suffix == ".md").read_text()
    header = next(line for line in report.splitlines() if "training s" in line)
    assert "R2" in header and "accuracy" not in header
