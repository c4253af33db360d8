"""User models in experiments: a tiny trained model saved in each framework's own format (torch
state_dict and TorchScript, .keras, flax msgpack) is run through a grid from a TOML file and
reported with its measured accuracy; declaring another layout and value range for the same
weights gives the same scores and the same attributions (the adaptation sits inside the graph,
in front of the model, so explanations stay in the dataset's NHWC [0, 1] space)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from xaibench import registry
from xaibench.api import load
from xaibench.experiment import runner
from xaibench.experiment.config import load_config
from xaibench.experiment.plan import make_plan
from tests.backends import _user_models as um

DEEP_TOLERANCE = 1e-5


def _run_grid(folder: Path, models_toml: str) -> tuple[runner.RunSummary, object]:
    """Run the shared grid with ``models_toml`` from a TOML file in ``folder``."""
    path = folder / "grid.toml"
    path.write_text(um.GRID_TOML + models_toml)
    summary = runner.run(load_config(path), folder / "out", progress=False,
                         cache_dir=folder / "cache")
    return summary, load(folder / "out")


def _check_reported(summary: runner.RunSummary, results: object, accuracy: float,
                    names: list[str]) -> None:
    """Every cell done; one model row per name, with ``accuracy``, not trained."""
    assert summary.failures == ()
    models = results.models.set_index("architecture")
    assert sorted(models.index) == sorted(names)
    assert models["accuracy"].tolist() == pytest.approx([accuracy] * len(names))
    assert (models["train_seconds"] == 0).all()
    assert set(results.cells["architecture"]) == set(names)
    assert len(results.cells) == 4 * len(names)


def _from_user(backend: str, **kwargs):
    return registry.backends.get(backend).from_user(um.data().spec, **kwargs)


def _check_same_model(first, second) -> None:
    """Same test scores and the same 'deep' attributions of two loads of one model."""
    dataset = um.data()
    assert np.allclose(first.predict(dataset.x_test), second.predict(dataset.x_test), atol=1e-4)
    x, background = dataset.x_test[:2], dataset.x_train[:5]
    a = first.explain("deep", x, 1, background=background).values
    b = second.explain("deep", x, 1, background=background).values
    assert np.abs(a - b).max() <= DEEP_TOLERANCE * max(1.0, np.abs(a).max())


# --- torch ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch_folder(tmp_path_factory):
    torch = pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("torch_user")
    um.write_torch(folder)
    net = registry.backends.get("torch").from_user(
        um.data().spec, weights=folder / "net.pt", model="tiny_torch_net:Net",
        base_dir=folder).module
    torch.jit.script(net).save(str(folder / "net.ts"))
    return folder


TORCH_MODELS = """
[[models]]
backend = "torch"
model = "tiny_torch_net:Net"
weights = "net.pt"

[[models]]
backend = "torch"
model = "tiny_torch_net.py:Net"
params = { nhwc = true, scale = 255.0 }
weights = "net.pt"
name = "net_nhwc_255"
layout = "NHWC"
value_range = [0, 255]
class_names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
"""


def test_torch_grid_reports_user_models_with_measured_accuracy(torch_folder):
    import torch

    namespace: dict = {}
    exec(um.TORCH_SOURCE, namespace)
    net = namespace["Net"]()
    net.load_state_dict(torch.load(torch_folder / "net.pt"))
    with torch.no_grad():
        scores = net(torch.from_numpy(um.data().x_test).permute(0, 3, 1, 2)).numpy()
    summary, results = _run_grid(torch_folder, TORCH_MODELS)
    _check_reported(summary, results, um.accuracy(scores), ["net", "net_nhwc_255"])
    assert um.accuracy(scores) > 0.8
    evaluation = results._results.models.set_index("architecture").loc["net_nhwc_255",
                                                                        "evaluation"]
    assert evaluation["user_model"] and evaluation["layout"] == "NHWC"
    assert list(evaluation["per_class"])[:2] == ["zero", "one"]


def test_torch_nhwc_and_value_range_agree_with_nchw(torch_folder):
    nchw = _from_user("torch", weights=torch_folder / "net.pt", model="tiny_torch_net:Net",
                      base_dir=torch_folder)
    nhwc = _from_user("torch", weights=torch_folder / "net.pt", model="tiny_torch_net:Net",
                      params={"nhwc": True, "scale": 255.0}, layout="NHWC",
                      value_range=(0, 255), base_dir=torch_folder)
    _check_same_model(nchw, nhwc)


def test_torchscript_predicts_and_explains_like_its_state_dict(torch_folder):
    script = _from_user("torch", weights=torch_folder / "net.ts")
    state = _from_user("torch", weights=torch_folder / "net.pt", model="tiny_torch_net:Net",
                       base_dir=torch_folder)
    dataset = um.data()
    assert np.allclose(script.predict(dataset.x_test), state.predict(dataset.x_test), atol=1e-5)
    x, background = dataset.x_test[:2], dataset.x_train[:5]
    a = script.explain("gradient", x, 1, background=background, nsamples=8, seed=1).values
    b = state.explain("gradient", x, 1, background=background, nsamples=8, seed=1).values
    assert np.allclose(a, b, atol=1e-6)


def test_a_changed_weights_file_gives_new_model_and_cell_keys(torch_folder, tmp_path):
    for name in ("tiny_torch_net.py", "net.pt"):
        shutil.copy(torch_folder / name, tmp_path / name)
    path = tmp_path / "grid.toml"
    path.write_text(um.GRID_TOML + TORCH_MODELS.split("[[models]]")[1].join(["[[models]]", ""]))
    before = make_plan(load_config(path), "data")
    assert make_plan(load_config(path), "data").models == before.models  # stable
    um.write_torch(tmp_path, steps=1)
    after = make_plan(load_config(path), "data")
    assert after.models[0].key != before.models[0].key
    assert not {c.key for c in after.cells} & {c.key for c in before.cells}


# --- keras ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras_folder(tmp_path_factory):
    pytest.importorskip("tensorflow")
    folder = tmp_path_factory.mktemp("keras_user")
    um.write_keras(folder)
    return folder


def test_keras_grid_nchw_255_agrees_with_nhwc(keras_folder):
    nhwc = _from_user("keras", weights=keras_folder / "nhwc.keras")
    nchw = _from_user("keras", weights=keras_folder / "nchw255.keras", layout="NCHW",
                      value_range=(0, 255))
    _check_same_model(nhwc, nchw)
    accuracy = um.accuracy(nhwc.predict(um.data().x_test))
    assert accuracy > 0.8
    summary, results = _run_grid(keras_folder, """
[[models]]
backend = "keras"
weights = "nhwc.keras"

[[models]]
backend = "keras"
weights = "nchw255.keras"
layout = "NCHW"
value_range = [0, 255]
""")
    _check_reported(summary, results, accuracy, ["nhwc", "nchw255"])


def test_keras_user_model_without_a_deeplift_rule_gets_the_zoo_error(keras_folder):
    import keras

    from xaibench.errors import UnsupportedModelError

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(4, activation="gelu", name="hidden"),
                              keras.layers.Dense(10)])
    model.save(keras_folder / "gelu.keras")
    backend = _from_user("keras", weights=keras_folder / "gelu.keras", value_range=(0, 255))
    data = um.data()
    with pytest.raises(UnsupportedModelError, match=r"layer 'hidden' \(Dense, activation gelu\)"):
        backend.explain("deep", data.x_test[:1], 1, background=data.x_train[:3])


# --- flax -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def flax_folder(tmp_path_factory):
    pytest.importorskip("flax")
    folder = tmp_path_factory.mktemp("flax_user")
    um.write_flax(folder)
    return folder


def test_flax_grid_nchw_255_agrees_with_nhwc(flax_folder):
    nhwc = _from_user("flax", weights=flax_folder / "cnn.msgpack", model="tiny_flax_cnn:CNN",
                      base_dir=flax_folder)
    nchw = _from_user("flax", weights=flax_folder / "cnn.msgpack", model="tiny_flax_cnn:CNN",
                      params={"nchw": True, "scale": 255.0}, layout="NCHW",
                      value_range=(0, 255), base_dir=flax_folder)
    _check_same_model(nhwc, nchw)
    accuracy = um.accuracy(nhwc.predict(um.data().x_test))
    assert accuracy > 0.8
    summary, results = _run_grid(flax_folder, """
[[models]]
backend = "flax"
model = "tiny_flax_cnn:CNN"
weights = "cnn.msgpack"

[[models]]
backend = "flax"
model = "tiny_flax_cnn:CNN"
params = { nchw = true, scale = 255.0 }
weights = "cnn.msgpack"
name = "cnn_nchw"
layout = "NCHW"
value_range = [0, 255]
""")
    _check_reported(summary, results, accuracy, ["cnn", "cnn_nchw"])
