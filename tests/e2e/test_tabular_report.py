"""A tabular experiment end to end: breast-cancer rows (30 named features, as (1, 30, 1)
images) explained by TreeSHAP and permutation on a random forest, and permutation on a torch
MLP; the report shows feature importance, the beeswarm and the agreement of the feature
rankings instead of image explanations."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest

from xaibench import registry
from xaibench.backend import ImageSpec
from xaibench.data.base import Dataset, DatasetInfo
from xaibench.registry import Entry

NAME = "cancer_rows"
N_FEATURES = 30


@dataclass(frozen=True)
class _Rows(Dataset):
    """A dataset of feature rows: its spec names the features."""

    feature_names: tuple[str, ...] = ()

    @property
    def spec(self) -> ImageSpec:
        return replace(super().spec, feature_names=self.feature_names)


def load() -> Dataset:
    """scikit-learn's breast-cancer rows scaled to [0, 1]: 400 training, 169 test rows."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    x = ((data.data - data.data.min(0)) / np.ptp(data.data, axis=0)).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order].reshape(len(x), 1, N_FEATURES, 1), data.target[order].astype(np.int64)
    return _Rows(NAME, x[:400], y[:400], x[400:], y[400:], ("malignant", "benign"),
                 feature_names=tuple(data.feature_names))


def describe() -> DatasetInfo:
    return DatasetInfo(shape=(1, N_FEATURES, 1), n_classes=2, n_train=400, n_test=169)


@pytest.fixture()
def tabular_dataset(monkeypatch):
    monkeypatch.setitem(registry.datasets._entries, NAME, Entry(NAME, f"{__name__}:load"))


@pytest.mark.slow
def test_tabular_report_sections(tabular_dataset, tmp_path, cache):
    import xaibench
    from xaibench.report.document import render

    permutation = {"name": "permutation", "maskers": ["constant(0.5)"],
                   "params": {"max_evals": 2 * N_FEATURES + 1}}
    config = {
        "name": "tabular", "seed": 0, "metrics": ["additivity"],
        "output": str(tmp_path / "results"),
        "dataset": {"name": NAME, "n_background": 20},
        "images": {"first": 16},
        "models": [{"backend": "sklearn", "architecture": "random_forest",
                    "params": {"n_estimators": 20}}],
        "explainers": [{"name": "tree", "backends": ["sklearn"]}, permutation],
    }
    forest = xaibench.run(config, progress=False, cache_dir=cache)
    assert not forest.summary.failures
    # a torch MLP added: its cells join the stored ones (tree explains the forest only)
    config["models"] = [*config["models"], {
        "backend": "torch", "architecture": "mlp", "params": {"hidden": 16},
        "train": {"epochs": 10, "batch_size": 32, "lr": 1e-2}}]
    results = xaibench.run(config, progress=False, cache_dir=cache)
    assert not results.summary.failures

    root = tmp_path / "results"
    render(root, ["md", "csv"])
    report = (root / "report.md").read_text()
    assert "### Features" in report and "### Explanations" not in report
    for figure in ("importance", "beeswarm", "feature_agreement"):
        assert (root / "figures" / f"{figure}_{NAME}.png").stat().st_size < 300_000, figure
    import pandas as pd

    importance = pd.read_csv(root / "tables" / f"feature_importance_{NAME}.csv", index_col=0)
    assert list(importance.columns)[:2] == ["mean radius", "mean texture"]
    assert len(importance) == 3  # tree and permutation on the forest, permutation on the MLP
    tree = next(label for label in importance.index if "tree" in label)
    forest_permutation = next(label for label in importance.index
                              if "permutation" in label and "sklearn" in label)
    agreement = pd.read_csv(root / "tables" / f"feature_agreement_{NAME}.csv", index_col=0)
    np.testing.assert_allclose(np.diag(agreement.to_numpy()), 1.0)
    # exact TreeSHAP and permutation SHAP of the same forest rank the features alike
    assert agreement.loc[tree, forest_permutation] > 0.5
    # the report's importance is mean |φ| of the stored attributions
    cell = results.cells.set_index("explainer").loc["tree"]
    values = results.attribution(cell["cell_key"]).values
    np.testing.assert_allclose(importance.loc[tree].to_numpy(),
                               np.abs(values).mean(axis=(0, 1, 3, 4)), rtol=1e-6)
