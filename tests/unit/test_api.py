"""The Python API: xaibench.run from a file or a dict, xaibench.load's DataFrames, the stored
attributions and their shap Explanations."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pandas as pd
import pytest

import xaibench
from tests.reliability._runs import FAST_TOML, N_CELLS, N_IMAGES, fast_config, planned_keys
from xaibench.api import CELL_COLUMNS, experiment_config
from xaibench.backend import Attribution, Backend
from xaibench.experiment.config import config_from_dict
from xaibench.experiment.store import Store
from xaibench.report.tables import Results, leaderboard


@pytest.fixture(scope="module")
def from_file(tmp_path_factory, cache):
    """The fast experiment run from its TOML file, and the attributions it computed by cell key
    (caught on their way into the store)."""
    folder = tmp_path_factory.mktemp("from_file")
    path = folder / "fast.toml"
    path.write_text(FAST_TOML, encoding="utf-8")
    computed: dict[str, Attribution] = {}
    explained: list[Attribution] = []
    explain, put_cell = Backend.explain, Store.put_cell

    def explain_spy(self, *args, **kwargs):
        explained.append(explain(self, *args, **kwargs))
        return explained[-1]

    def put_cell_spy(self, record, arrays, metrics=()):
        computed[record.cell_key] = explained[-1]
        return put_cell(self, record, arrays, metrics)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Backend, "explain", explain_spy)
        patch.setattr(Store, "put_cell", put_cell_spy)
        results = xaibench.run(path, folder / "out", progress=False, cache_dir=cache)
    return results, computed


def test_run_from_a_dict_equals_the_run_from_its_file(from_file, tmp_path, cache):
    data = tomllib.loads(FAST_TOML)
    results = xaibench.run(data, tmp_path / "out", progress=False, cache_dir=cache)
    keys = set(results.cells["cell_key"])
    assert keys == set(from_file[0].cells["cell_key"]) == planned_keys(fast_config())
    assert results.summary.n_finished == N_CELLS and not results.summary.failures
    config = experiment_config(data)
    assert config == fast_config()
    assert json.loads(config.source) == data


def test_a_dict_may_hold_tuples_for_lists():
    data = tomllib.loads(FAST_TOML)
    data["metrics"] = ("additivity",)
    assert config_from_dict(data) == fast_config()


def test_load_gives_the_cells_scores_models_and_the_reports_leaderboard(from_file):
    results = xaibench.load(from_file[0].root)
    assert results.summary is None
    cells = results.cells
    assert list(cells.columns) == CELL_COLUMNS
    assert len(cells) == N_CELLS
    assert (cells["status"] == "done").all() and (cells["n_images"] == N_IMAGES).all()
    assert (cells["seconds"] > 0).all() and (cells["evals"] >= 0).all()
    assert set(cells["params"]) == {"targets=1", "targets=2", "targets=3"}

    scores = results.scores
    assert {"cell_key", "backend", "architecture", "explainer", "masker", "params", "metric",
            "image", "output", "value", "higher_is_better", "category"} <= set(scores.columns)
    assert len(scores) == N_IMAGES * (1 + 2 + 3)  # one metric, per image and explained output
    per_cell = scores.groupby("params")["output"].nunique().to_dict()
    assert per_cell == {"targets=1": 1, "targets=2": 2, "targets=3": 3}

    pd.testing.assert_frame_equal(results.leaderboard, leaderboard(Results.load(results.root)))
    assert len(results.models) == 1 and 0 <= results.models["accuracy"].iloc[0] <= 1
    assert "3 done" in repr(results)


def test_a_stored_attribution_equals_the_computed_one(from_file):
    results, computed = from_file
    assert set(computed) == set(results.cells["cell_key"])
    for key, expected in computed.items():
        stored = results.attribution(key)
        assert stored.method == expected.method == "random"
        np.testing.assert_allclose(stored.values, expected.values, rtol=1e-6, atol=1e-7)
        for name in ("output_indices", "base_values", "model_outputs"):
            np.testing.assert_array_equal(getattr(stored, name), getattr(expected, name))
        assert (stored.wall_seconds, stored.model_evals) == (expected.wall_seconds,
                                                             expected.model_evals)


@pytest.fixture
def pyplot():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def _n_axes(explanation, plt) -> int:
    import shap

    shap.image_plot(explanation, show=False)
    return len(plt.gcf().axes)


def test_a_cells_explanation_plots_with_shap(from_file, pyplot):
    results = from_file[0]
    key = results.cells.loc[results.cells["params"] == "targets=3", "cell_key"].iloc[0]
    explanation = results.explanation(key)
    attribution = results.attribution(key)
    class_names = Store(results.root).get_meta("class_names")["digits"]
    assert explanation.values.shape == (N_IMAGES, 8, 8, 1, 3)
    assert explanation.output_dims == (4,)
    assert explanation.data.shape == (N_IMAGES, 8, 8, 1)
    np.testing.assert_array_equal(explanation.base_values, attribution.base_values)
    assert np.asarray(explanation.output_names).tolist() == \
        [[class_names[i] for i in row] for row in attribution.output_indices]
    assert _n_axes(explanation, pyplot) == N_IMAGES * (3 + 1) + 1  # image + outputs, colorbar


def _attribution(n: int, channels: int, output_indices: np.ndarray) -> Attribution:
    k = output_indices.shape[1]
    values = np.random.default_rng(0).normal(size=(n, 6, 6, channels, k))
    return Attribution("random", values, output_indices, np.zeros((n, k)),
                       values.reshape(n, -1, k).sum(axis=1), 0.1, 10)


def test_names_per_image_when_as_many_channels_as_images(pyplot):
    """shap's constructor would read the names as a second output axis here (3 RGB images)."""
    attribution = _attribution(3, 3, np.array([[0, 1], [1, 2], [2, 0]]))
    images = np.random.default_rng(1).uniform(size=(3, 6, 6, 3))
    explanation = attribution.to_shap(images, ["cat", "dog", "owl"])
    assert explanation.output_dims == (4,)
    assert np.asarray(explanation.output_names).tolist() == [["cat", "dog"], ["dog", "owl"],
                                                             ["owl", "cat"]]
    assert _n_axes(explanation, pyplot) == 3 * (2 + 1) + 1


def test_shared_names_and_class_indices_without_class_names(pyplot):
    attribution = _attribution(2, 1, np.array([[3, 1], [3, 1]]))
    explanation = attribution.to_shap(np.zeros((2, 6, 6, 1)))
    assert list(explanation.output_names) == ["3", "1"]
    assert explanation[0].values.shape == (6, 6, 1, 2)
    assert _n_axes(explanation, pyplot) == 2 * (2 + 1) + 1
