"""Bad user-model declarations and files give one-line errors naming the problem and the fix:
in the config (before anything runs) or when the model is loaded and checked on one batch
(before any explanation)."""

from __future__ import annotations

import pytest

from xaibench import registry
from xaibench.errors import ConfigError, UnsupportedModelError
from xaibench.experiment.config import load_config
from tests.backends import _user_models as um

torch = pytest.importorskip("torch")

MODEL = """
[[models]]
backend = "torch"
model = "tiny_torch_net:Net"
weights = "net.pt"
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A trained tiny torch model (state_dict and TorchScript) and its source file."""
    folder = tmp_path_factory.mktemp("torch_user_errors")
    um.write_torch(folder, steps=5)
    net = registry.backends.get("torch").from_user(
        um.data().spec, weights=folder / "net.pt", model="tiny_torch_net:Net",
        base_dir=folder).module
    torch.jit.script(net).save(str(folder / "net.ts"))
    return folder


def _config(folder, models: str = MODEL):
    path = folder / "grid.toml"
    path.write_text(um.GRID_TOML + models)
    return load_config(path)


def _one_line(exc_info) -> None:
    assert "\n" not in str(exc_info.value)


def _load(folder, **kwargs):
    return registry.backends.get("torch").from_user(um.data().spec, base_dir=folder,
                                                    **{"weights": folder / "net.pt", **kwargs})


@pytest.mark.parametrize("edit, match", [
    ('weights = "net.pt"\ntrain = { epochs = 1 }',
     r"'train' does not apply to a user model \(it is loaded from its weights, never trained.*"
     r"remove 'train'"),
    ('weights = "missing.pt"', r"weights = 'missing.pt' is not a file .*fix the path"),
    ('weights = "net.pt"\nclass_names = ["a", "b", "c"]',
     r"class_names lists 3 classes but the dataset has 10; give one name per dataset class"),
    ('weights = "net.pt"\nclass_names_file = "nowhere.txt"',
     r"class_names_file = 'nowhere.txt' is not a file"),
    ('weights = "net.pt"\nlayout = "CHW"', r"layout = 'CHW' is unknown; set layout = \"NCHW\""),
    ('weights = "net.pt"\nvalue_range = [255, 0]',
     r"value_range = \[255, 0\] must be \[low, high\] with low < high"),
    ('weights = "net.pt"\nname = "mlp"', r"name = 'mlp' is a zoo architecture's; give the user "
                                         r"model another name"),
    ('weights = "net.pt"\narchitecture = "mlp"', r"'architecture' does not apply to a user model"),
])
def test_bad_user_model_declarations_fail_the_config(folder, edit, match):
    with pytest.raises(ConfigError, match=match) as exc_info:
        _config(folder, MODEL.replace('weights = "net.pt"', edit))
    _one_line(exc_info)


def test_relative_paths_resolve_against_the_experiment_files_directory(folder):
    (folder / "classes.txt").write_text("\n".join("abcdefghij"))
    user = _config(folder, MODEL + 'class_names_file = "classes.txt"\n').models[0].user
    assert user.weights == str(folder / "net.pt") and user.base_dir == str(folder)
    assert user.class_names == tuple("abcdefghij")


def test_wrong_layout_names_the_expected_input(folder):
    with pytest.raises(ConfigError, match=r"fails on a batch \(N, 8, 8, 1\) in layout NHWC "
                       r".*expected input \(N, 1, 8, 8\) — is layout NCHW\?") as exc_info:
        _load(folder, model="tiny_torch_net:Net", layout="NHWC")
    _one_line(exc_info)


def test_weights_of_another_architecture_are_refused(folder):
    with pytest.raises(ConfigError, match=r"does not match the model .*shape mismatch.*do model "
                       r"= 'tiny_torch_net:Net' and its params build the trained") as exc_info:
        _load(folder, model="tiny_torch_net:Net", params={"n_classes": 1000})
    _one_line(exc_info)


def test_a_model_with_other_classes_is_refused(folder):
    namespace: dict = {}
    exec(um.TORCH_SOURCE, namespace)
    torch.save(namespace["Net"](n_classes=1000).state_dict(), folder / "net1000.pt")
    with pytest.raises(ConfigError, match=r"returned \(2, 1000\) scores for a batch of 2 images "
                       r"and 10 classes; it must return \(N, 10\)") as exc_info:
        _load(folder, weights=folder / "net1000.pt", model="tiny_torch_net:Net",
              params={"n_classes": 1000})
    _one_line(exc_info)


def test_torchscript_with_model_is_a_conflict(folder):
    with pytest.raises(ConfigError, match=r"'net.ts' is a TorchScript archive, which holds its "
                       r"own architecture, but model = .* remove model") as exc_info:
        _load(folder, weights=folder / "net.ts", model="tiny_torch_net:Net")
    _one_line(exc_info)


def test_a_state_dict_without_model_is_not_torchscript(folder):
    with pytest.raises(ConfigError, match=r"without model is read as a TorchScript archive, but "
                       r"it is not one .*set model = ") as exc_info:
        _load(folder)
    _one_line(exc_info)


@pytest.mark.parametrize("model, match", [
    ("no_such_module:Net", r"cannot import module 'no_such_module' .*next to the experiment"),
    ("tiny_torch_net:Nett", r"module 'tiny_torch_net' has no 'Nett' \(it defines: .*Net"),
    ("tiny_torch_net:nn", r"is a module, not a class or factory; name the class"),
])
def test_bad_model_names(folder, model, match):
    with pytest.raises(ConfigError, match=match) as exc_info:
        _load(folder, model=model)
    _one_line(exc_info)


def test_torchscript_cannot_be_explained_by_deep_or_randomised(folder):
    backend = _load(folder, weights=folder / "net.ts")
    data = um.data()
    with pytest.raises(UnsupportedModelError, match=r"TorchScript model cannot be inspected "
                       r"layer by layer .*give model = "):
        backend.explain("deep", data.x_test[:1], 1, background=data.x_train[:3])
    with pytest.raises(UnsupportedModelError, match=r"randomisation \(MPRT\) need a Python"):
        backend.randomized(1)


def test_flax_user_model_needs_its_module(folder):
    pytest.importorskip("flax")
    with pytest.raises(ConfigError, match=r"a flax model needs model = \"pkg.module:CNN\""):
        registry.backends.get("flax").from_user(um.data().spec, weights=folder / "net.pt")


def test_a_user_model_shap_deep_cannot_explain_gets_the_zoo_error(folder):
    (folder / "reused_relu.py").write_text(
        "from torch import nn\n\n"
        "def build():\n"
        "    relu = nn.ReLU()\n"
        "    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), relu, nn.Conv2d(2, 2, 3), relu,\n"
        "                         nn.Flatten(), nn.Linear(72, 10))\n")
    namespace: dict = {}
    exec((folder / "reused_relu.py").read_text(), namespace)
    torch.save(namespace["build"]().state_dict(), folder / "reused.pt")
    backend = _load(folder, weights=folder / "reused.pt", model="reused_relu:build")
    data = um.data()
    with pytest.raises(UnsupportedModelError, match=r"is called 2 times in one forward pass.*"
                       r"give every use its own ReLU\(\) instance"):
        backend.explain("deep", data.x_test[:1], 1, background=data.x_train[:3])
