"""Bad inputs to the Python API: a dict is refused with the same message as the file, what
no TOML file can hold, results directories without a store, unknown or failed cells, images
and class names that do not match an attribution."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

import xaibench
from tests.reliability._runs import FAST_TOML
from xaibench.backend import Attribution
from xaibench.errors import ConfigError, DataError, XaibenchError
from xaibench.experiment.config import config_from_dict, load_config
from xaibench.experiment.store import CellRecord, Store


@pytest.mark.parametrize("typo, message", [
    (("metrics = [", "metric = ["), r"unknown key 'metric' in the top level — did you mean "
                                    r"'metrics'\?"),
    (('name = "random"\ntargets = 2', 'name = "random"\ntarget = 2'),
     r"unknown key 'target' in \[\[explainers\]\] #2 — did you mean 'targets'\?"),
    (("n_background = 5", "n_background = 0"), r"\[dataset\]: 'n_background' must be >= 1"),
])
def test_a_bad_dict_gets_the_files_message(tmp_path, typo, message):
    text = FAST_TOML.replace(*typo)
    path = tmp_path / "fast.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as from_file:
        load_config(path)
    with pytest.raises(ConfigError, match=message) as from_dict:
        xaibench.run(tomllib.loads(text), tmp_path / "out", progress=False)
    assert str(from_dict.value) == str(from_file.value).replace(str(path), "experiment dict")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value, message", [
    (np.int64(1), r"experiment dict: np.int64\(1\) is not a TOML value; use str keys and str, "
                  r"int, float, bool, list or dict values.*int\(n\) for a numpy integer"),
    ({("a", 1): 2}, r"experiment dict: keys must be .*; use str keys"),
])
def test_a_dict_value_no_toml_file_holds_names_the_fix(value, message):
    data = tomllib.loads(FAST_TOML)
    data["seed"] = value
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_an_empty_dict_names_what_an_experiment_needs():
    with pytest.raises(ConfigError, match=r"experiment dict: the dict holds no settings; an "
                                          r"experiment needs name, \[dataset\]"):
        config_from_dict({})


def test_run_names_what_an_experiment_can_be():
    with pytest.raises(ConfigError, match=r"an experiment is an ExperimentConfig, the path of "
                                          r"a TOML file or a dict shaped like one; got list"):
        xaibench.run([FAST_TOML])


def test_load_of_a_missing_or_empty_directory_names_the_fix(tmp_path):
    with pytest.raises(ConfigError, match=r"results directory .*nowhere does not exist; run "
                                          r"`xaibench run CONFIG --output .*nowhere` first"):
        xaibench.load(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=r"holds no results store \(store.sqlite\); run "
                                          r"`xaibench run CONFIG --output"):
        xaibench.load(tmp_path)


def test_attribution_of_an_unknown_or_failed_cell_names_the_fix(tmp_path):
    Store(tmp_path).put_failure(CellRecord(
        cell_key="k1", dataset="digits", backend="torch", architecture="mlp", model_key="m1",
        explainer="partition", masker="blur(3,3)", params={"targets": 1}, seed=0),
        "max_evals too low")
    results = xaibench.load(tmp_path)
    with pytest.raises(DataError, match=r"no cell 'nope' in .*; take a key from the cell_key "
                                        r"column of results.cells"):
        results.attribution("nope")
    with pytest.raises(DataError, match=r"cell k1 \(partition on torch:mlp\) failed: max_evals "
                                        r"too low; run the experiment again to retry it"):
        results.explanation("k1")


def _attribution() -> Attribution:
    values = np.zeros((2, 4, 4, 1, 2))
    return Attribution("random", values, np.array([[0, 3], [1, 2]]), np.zeros((2, 2)),
                       np.zeros((2, 2)), 0.0, 0)


def test_to_shap_refuses_images_of_another_shape():
    pytest.importorskip("shap")
    with pytest.raises(XaibenchError, match=r"images \(2, 4, 4, 3\) do not match the explained "
                                            r"images \(2, 4, 4, 1\); pass the images this "
                                            r"attribution explains"):
        _attribution().to_shap(np.zeros((2, 4, 4, 3)))


def test_to_shap_refuses_too_few_class_names():
    pytest.importorskip("shap")
    with pytest.raises(XaibenchError, match=r"3 class names do not name output 3; pass every "
                                            r"class's name"):
        _attribution().to_shap(class_names=["a", "b", "c"])
