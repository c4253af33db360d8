"""Experiment files: a valid one parses into dataclasses; every mistake fails fast and clearly."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xaibench import registry
from xaibench.data import example_folder
from xaibench.errors import ConfigError, DataError
from xaibench.experiment.config import (TRAIN_DEFAULTS, ExplainerConfig, ImagesConfig,
                                        dataset_info, load_config, parse_config)
from xaibench.experiment.plan import make_plan


def test_tiny_config_parses_with_defaults(tiny_toml):
    config = parse_config(tiny_toml)
    assert config.name == "tiny" and config.seed == 3
    assert config.output == "results/tiny"
    assert config.dataset.name == "digits" and config.dataset.n_train == 300
    assert config.images == ImagesConfig(first=2, correct=0, wrong=0)
    assert config.models[0].train == {"epochs": 1, "batch_size": 32, "lr": 1e-2}
    assert config.explainers == (
        ExplainerConfig("partition", ("blur(3,3)",), 1, {"max_evals": 40}),
        ExplainerConfig("deep", (), 1, {}))
    assert config.source == tiny_toml


def test_defaults_fill_train_params_and_default_masker(tiny_toml):
    text = tiny_toml.replace('train = { epochs = 1, batch_size = 32, lr = 1e-2 }', "") \
                    .replace('maskers = ["blur(3,3)"]', "")
    config = parse_config(text)
    assert config.models[0].train == TRAIN_DEFAULTS
    assert config.explainers[0].maskers == ("blur(8,8)",)  # partition's own default


def test_masker_specs_are_canonical(tiny_toml):
    config = parse_config(tiny_toml.replace('"blur(3,3)"', '"blur( 3, ky=3 )", "inpaint_ns"'))
    assert config.explainers[0].maskers == ("blur(3,ky=3)", "inpaint_ns")


def test_rulers_default_to_blur_scaled_to_the_image_inpainting_and_the_mean(tiny_toml):
    assert parse_config(tiny_toml).evaluation.rulers == ("blur(2,2)", "inpaint_telea", "mean")
    fashion = parse_config(tiny_toml.replace('name = "digits"', 'name = "fashion_mnist"'))
    assert fashion.evaluation.rulers == ("blur(8,8)", "inpaint_telea", "mean")  # 28x28


def test_rulers_are_canonical_and_kept_in_order(tiny_toml):
    config = parse_config(f'{tiny_toml}\n[evaluation]\nrulers = ["zero", "blur( 3, ky=3 )", '
                          f'"noisy_linear(0.05)"]\n')
    assert config.evaluation.rulers == ("zero", "blur(3,ky=3)", "noisy_linear(0.05)")


def test_validation_imports_no_framework(tiny_toml):
    before = set(sys.modules)
    start = time.perf_counter()
    parse_config(tiny_toml.replace('"blur(3,3)"', '"inpaint_telea"'))
    assert time.perf_counter() - start < 1.0
    heavy = {"torch", "tensorflow", "jax", "shap"} & (set(sys.modules) - before)
    assert not heavy, f"config validation imported {heavy}"


@pytest.mark.parametrize("old, new, message", [
    # unknown keys name the allowed ones
    ('seed = 3', 'sed = 3',
     "unknown key 'sed' in the top level — did you mean 'seed'? (allowed: name, seed,"),
    ('n_train = 300', 'n_trian = 300',
     "unknown key 'n_trian' in [dataset] — did you mean 'n_train'?"),
    ('lr = 1e-2 }', 'lr = 1e-2, epoch = 2 }',
     "unknown key 'epoch' in [[models]] #1 train — did you mean 'epochs'? "
     "(allowed: epochs, batch_size, lr)"),
    # registry names get suggestions
    ('name = "partition"', 'name = "partion"',
     "[[explainers]] #1: unknown explainer 'partion' — did you mean 'partition'"),
    ('name = "digits"', 'name = "digit"',
     "[dataset]: unknown dataset 'digit' — did you mean 'digits'?"),
    ('metrics = ["additivity"]', 'metrics = ["additivty"]',
     "'metrics': unknown metric 'additivty' — did you mean 'additivity'?"),
    ('backend = "torch"', 'backend = "pytorch"', "[[models]] #1: unknown backend 'pytorch'"),
    # params are bound against the target's signature
    ('max_evals = 40', 'max_eval = 40',
     "[[explainers]] #1 (partition) params: unknown param 'max_eval' — did you mean "
     "'max_evals'? (it takes: max_evals=500, batch_size=50, seed=0, patch=None)"),
    ('n_train = 300', 'n_train = 300\nparams = { tes_fraction = 0.5 }',
     "[dataset] params of dataset 'digits': unknown param 'tes_fraction' — did you mean "
     "'test_fraction'?"),
    ('name = "deep"', 'name = "deep"\nparams = { nsamples = 10 }',
     "[[explainers]] #2 (deep) params: unknown param 'nsamples' (it takes: check_additivity=True)"),
    # maskers
    ('"blur(3,3)"', '"blurr(3,3)"',
     "[[explainers]] #1 (partition): unknown masker 'blurr' — did you mean 'blur'?"),
    ('"blur(3,3)"', '"blur(3,3,3)"', "masker spec 'blur(3,3,3)': too many positional arguments"),
    ('"blur(3,3)"', '"blur(3"', "malformed masker spec 'blur(3'"),
    ('name = "deep"', 'name = "deep"\nmaskers = ["blur(8,8)"]',
     "[[explainers]] #2 (deep): explainer 'deep' takes no masker (it explains against "
     "background images); maskers apply to model-agnostic explainers: partition, permutation"),
    ('max_evals = 40', 'max_evals = 40, masker = "blur(3,3)"',
     "'masker' is set by the runner from 'maskers', not in params"),
    ('name = "deep"', 'name = "deep"\nparams = { background = 3 }',
     "'background' is set by the runner from [dataset] n_background"),
    # feature grouping: only for explainers that mask, with superpixels that fit the images
    ('name = "deep"', 'name = "deep"\nparams = { patch = 2 }',
     "[[explainers]] #2 (deep): explainer 'deep' does not mask features, so it takes no patch; "
     "superpixel grouping applies to: partition, permutation"),
    ('max_evals = 40', 'max_evals = 40, patch = 0',
     "[[explainers]] #1 (partition) params: patch must be an integer in 1..8 (the side of the "
     "square superpixels of the 8x8 images), got 0; e.g. patch = 4"),
    ('max_evals = 40', 'max_evals = 40, patch = 9', "patch must be an integer in 1..8"),
    ('max_evals = 40', 'max_evals = 40, patch = 2.5', "patch must be an integer in 1..8"),
    ('name = "partition"\nmaskers = ["blur(3,3)"]\nparams = { max_evals = 40 }',
     'name = "permutation"\nparams = { max_evals = 20, patch = 2 }',
     "[[explainers]] #1 (permutation) params: max_evals = 20 is below permutation's minimum "
     "2*M+1 = 33 for M = 16 features (4x4 superpixels of patch = 2 on the 8x8x1 images of "
     "dataset 'digits'); set max_evals >= 33"),
    # architectures must exist for the backend
    ('architecture = "fmnist_cnn"', 'architecture = "vgg16_transfer"',
     "architecture 'vgg16_transfer' is not implemented for backend 'torch' (it is for: keras)"),
    ('architecture = "fmnist_cnn"', 'architecture = "fmnist"',
     "unknown model 'fmnist' — did you mean 'fmnist_cnn'?"),
    # architecture params and backend-specific training params, read without importing
    ('architecture = "fmnist_cnn"', 'architecture = "fmnist_cnn"\nparams = { conv_1 = 4 }',
     "[[models]] #1 params of architecture 'fmnist_cnn' (torch): unknown param 'conv_1' — did "
     "you mean 'conv1'? (it takes: conv1=32, conv2=16, head='flatten')"),
    ('lr = 1e-2 }', 'lr = 1e-2, patience = 2 }',
     "unknown key 'patience' in [[models]] #1 train (allowed: epochs, batch_size, lr)"),
    # types and ranges
    ('seed = 3', 'seed = "3"', "'seed' must be an integer, got '3'"),
    ('first = 2', 'first = 0', "[images] selects no image"),
    ('epochs = 1', 'epochs = true', "'epochs' must be an integer, got True"),
    ('lr = 1e-2', 'lr = 0', "'lr' must be > 0"),
    ('n_background = 5', 'n_background = 0', "'n_background' must be >= 1, got 0"),
    ('metrics = ["additivity"]', 'metrics = ["additivity"]\n[metric_params]\nmprt = {seed = 1}',
     "[metric_params] sets 'mprt', which 'metrics' does not list"),
    ('metrics = ["additivity"]',
     'metrics = ["max_sensitivity"]\n[metric_params]\nmax_sensitivity = {raduis = 0.1}',
     "[metric_params] max_sensitivity: unknown param 'raduis' — did you mean 'radius'?"),
    # what an explainer requires of a zoo model (CAM: global average pooling before the dense)
    ('name = "deep"', 'name = "cam"',
     "[[explainers]] #2 (cam) needs a model that ends in convolution -> global average pooling "
     "-> dense; [[models]] #1 (torch fmnist_cnn) does not: build it with params = { head = "
     "'gap' }, or use 'gradcam', which works for any CNN"),
])
def test_mistakes_fail_with_a_specific_message(tiny_toml, old, new, message):
    assert old in tiny_toml
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        parse_config(tiny_toml.replace(old, new, 1), origin="tiny.toml")
    assert time.perf_counter() - start < 1.0
    assert str(info.value).startswith("tiny.toml: ")
    assert message in str(info.value)


def test_required_sections(tiny_toml):
    with pytest.raises(ConfigError, match=r"missing required key 'dataset'"):
        parse_config(tiny_toml.split("[dataset]")[0])
    with pytest.raises(ConfigError, match=r"'explainers' is empty"):
        parse_config("explainers = []\n" + tiny_toml.split("[[explainers]]")[0])


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"^x\.toml: invalid TOML: "):
        parse_config("name = ", origin="x.toml")
    with pytest.raises(ConfigError, match=r"experiment file .*nope\.toml does not exist"):
        load_config(tmp_path / "nope.toml")


def test_load_config_reads_the_file(tmp_path, tiny_toml):
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_toml)
    assert load_config(path) == parse_config(tiny_toml)


def test_model_params_and_backend_training_options(tiny_toml):
    text = tiny_toml.replace('backend = "torch"\narchitecture = "fmnist_cnn"\n'
                             'train = { epochs = 1, batch_size = 32, lr = 1e-2 }',
                             'backend = "keras"\narchitecture = "vgg16_transfer"\n'
                             'params = { weights = "none", hidden = 8 }\n'
                             'train = { epochs = 3, augment = true, patience = 1 }')
    [model] = parse_config(text).models
    assert model.params == {"weights": "none", "hidden": 8}
    assert model.train == {**TRAIN_DEFAULTS, "epochs": 3, "augment": True, "patience": 1}
    assert model.weights_from is None


def test_model_params_and_training_options_are_type_checked(tiny_toml):
    with pytest.raises(ConfigError, match=r"params of architecture 'fmnist_cnn' \(torch\): "
                                          r"'conv1' must be an integer, got '8'; write it "
                                          r"without quotes"):
        parse_config(tiny_toml.replace('architecture = "fmnist_cnn"',
                                       'architecture = "fmnist_cnn"\nparams = { conv1 = "8" }'))
    text = tiny_toml.replace('backend = "torch"', 'backend = "keras"').replace(
        "lr = 1e-2 }", 'lr = 1e-2, augment = "yes" }')
    with pytest.raises(ConfigError, match="train of backend 'keras': 'augment' must be true or "
                                          "false, got 'yes'"):
        parse_config(text)


COPIES = """
[[models]]
backend = "flax"
architecture = "fmnist_cnn"
weights_from = "torch"

[[models]]
backend = "keras"
architecture = "fmnist_cnn"
weights_from = "torch"
"""


def _with_models(tiny_toml: str, models: str) -> str:
    head, explainers = tiny_toml.split("[[explainers]]", 1)
    return f"{head}{models}\n[[explainers]]{explainers}"


def test_copies_take_their_sources_params(tiny_toml):
    text = _with_models(tiny_toml.replace('architecture = "fmnist_cnn"',
                                          'architecture = "fmnist_cnn"\nparams = { conv2 = 4 }'),
                        COPIES)
    torch, flax, keras = parse_config(text).models
    assert torch.weights_from is None and torch.params == {"conv2": 4}
    assert (flax.weights_from, flax.params, flax.train) == ("torch", {"conv2": 4}, {})
    assert (keras.backend, keras.weights_from, keras.params) == ("keras", "torch", {"conv2": 4})


@pytest.mark.parametrize("models, message", [
    (COPIES.replace('weights_from = "torch"', 'weights_from = "troch"', 1),
     "[[models]] #2 weights_from: unknown backend 'troch' — did you mean 'torch'?"),
    (COPIES.replace('weights_from = "torch"', 'weights_from = "flax"', 1),
     "[[models]] #2 (flax:fmnist_cnn): weights_from = 'flax' is its own backend"),
    (COPIES.replace('architecture = "fmnist_cnn"', 'architecture = "mlp"', 1),
     "[[models]] #2 (flax:mlp): weights_from = 'torch', but no [[models]] entry is torch:mlp"),
    (COPIES.replace('weights_from = "torch"', 'weights_from = "keras"', 1)
     .replace('weights_from = "torch"', 'weights_from = "flax"'),  # a cycle
     "[[models]] #2 (flax:fmnist_cnn): weights_from = 'keras' names [[models]] #3, which "
     "copies its weights itself; copy from a trained model"),
    (COPIES.replace('weights_from = "torch"', 'weights_from = "torch"\ntrain = { epochs = 2 }',
                    1),
     "[[models]] #2: a model with 'weights_from' is not trained and takes its params from its "
     "source; remove 'train'"),
    (COPIES.replace('weights_from = "torch"', 'weights_from = "torch"\nparams = { conv1 = 8 }',
                    1), "remove 'params'"),
    (COPIES + '[[models]]\nbackend = "torch"\narchitecture = "fmnist_cnn"\n',
     "[[models]] #2 (flax:fmnist_cnn): weights_from = 'torch' is ambiguous: [[models]] #1 and "
     "#4 are both trained torch:fmnist_cnn"),
])
def test_weight_sources_are_checked(tiny_toml, models, message):
    with pytest.raises(ConfigError) as info:
        parse_config(_with_models(tiny_toml, models), origin="tiny.toml")
    assert message in str(info.value)


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[3] / "experiments").glob("*.toml")),
                         ids=lambda path: path.name)
def test_shipped_experiments_are_valid(path, tmp_path, monkeypatch):
    # run from a fresh clone's root, after `xaibench data example-folder data/example_photos`
    monkeypatch.chdir(tmp_path)
    example_folder.write(tmp_path / "data" / "example_photos", per_class=1, size=10)
    config = load_config(path)
    plan = make_plan(config)
    assert config.name == path.stem and plan.cells
    if config.name == "parity":  # one trained model, copied into the other frameworks
        trained, *copies = plan.models
        assert [m.backend for m in plan.models] == ["torch", "keras", "flax"]
        assert trained.weights_from is None
        assert all(copy.weights_from == trained.key for copy in copies)


# --- declarations validation reads instead of importing ---------------------------------------
def _describe(name: str):
    loader = registry.datasets.get(name)
    return importlib.import_module(loader.__module__).describe


@pytest.mark.parametrize("name", list(registry.datasets))
def test_every_dataset_is_described_with_its_loaders_parameters(name):
    assert inspect.signature(_describe(name)).parameters == \
        inspect.signature(registry.datasets.get(name)).parameters


def _image_folder(root: Path) -> dict:
    from PIL import Image

    for label, count in (("cat", 3), ("dog", 4), ("emu", 2)):
        (root / label).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (5, 7), (40 * i, 10, 90)).save(root / label / f"{i}.png")
    (root / ".hidden").mkdir()
    return {"root": str(root), "size": [6, 4]}


@pytest.mark.parametrize("name, params", [
    ("digits", {}), ("digits", {"test_fraction": 0.1, "n_train": 50}),
    ("digits", {"test_fraction": 0.9, "n_test": 0}),
    ("synthetic", {"n_train": 20, "n_test": 6, "size": 12, "n_classes": 3}),
    ("image_folder", {}), ("image_folder", {"grayscale": True, "n_train": 0}),
    ("fashion_mnist", {"n_train": 10, "n_test": 5}),
])
def test_descriptions_match_what_the_loaders_load(tmp_path, name, params):
    if name == "image_folder":
        params = {**_image_folder(tmp_path), **params}
    info = dataset_info(name, params)
    try:
        data = registry.datasets.get(name)(**params)
    except DataError as exc:  # Fashion-MNIST files not on this machine
        pytest.skip(str(exc))
    assert info.shape == data.spec.shape
    assert info.n_classes == len(data.class_names)
    assert info.has_masks == (data.masks_test is not None)
    for known, loaded in ((info.n_train, data.x_train), (info.n_test, data.x_test)):
        assert known is None or known == len(loaded)


def _keywords(function, skip: int) -> dict[str, object]:
    """Name -> default of ``function``'s params after its first ``skip`` (self excluded)."""
    parameters = list(inspect.signature(function).parameters.values())[skip:]
    return {p.name: p.default for p in parameters}


@pytest.mark.parametrize("name", list(registry.backends))
def test_backends_declare_what_their_classes_do(name):
    """The registry line declares the class's native methods and fit options; the class
    declares the params of each native method as its _native_<method> takes them."""
    from xaibench.backend import Backend

    entry = registry.backends.entry(name)
    assert entry.native_explainers <= {e for e in registry.explainers
                                       if registry.explainers.entry(e).native}
    if not entry.available:
        pytest.skip(f"{entry.framework} not installed")
    backend_class = registry.backends.get(name)
    assert issubclass(backend_class, Backend) and backend_class.trainable
    assert set(backend_class.native_methods) == entry.native_explainers
    for method, params in backend_class.native_methods.items():
        assert tuple(_keywords(getattr(backend_class, f"_native_{method}"), 4)) == params, method
    fit = _keywords(backend_class.fit, 3)
    assert set(fit) - {"seed", "progress"} == {*TRAIN_DEFAULTS, *entry.train_options}


@pytest.mark.parametrize("name", list(registry.models))
def test_architectures_declare_their_builders_params(name):
    from xaibench.experiment.config import _conforms

    architecture = registry.models.get(name)
    assert architecture.name == name
    for param in architecture.params.values():
        assert _conforms(param.default, param.type), (name, param)
    checked = 0
    for backend in architecture.frameworks:
        entry = registry.backends.entry(backend)
        if not entry.available:
            continue
        builders = importlib.import_module(f"backends.zoo.{backend}_models").BUILDERS
        assert set(builders) <= set(registry.models), backend
        assert _keywords(builders[name], 1) == {key: param.default for key, param
                                                in architecture.params.items()}, backend
        checked += 1
    if not checked:
        pytest.skip("no framework of this architecture installed")


@pytest.mark.parametrize("name", list(registry.explainers))
def test_explainers_declare_what_they_consume(name):
    entry = registry.explainers.entry(name)
    params = _keywords(registry.explainers.get(name), 3)
    assert entry.consumes == set(params) & set(registry.EXPLAINER_INPUTS)
    assert entry.default_masker == params.get("masker")


@pytest.mark.parametrize("name", list(registry.metrics))
def test_metrics_declare_what_they_consume(name):
    from xaibench.metrics.base import METRIC_INPUTS

    metric_class = registry.metrics.get(name)
    assert metric_class.consumes <= set(METRIC_INPUTS)
    assert ("seed" in metric_class.consumes) == ("seed" in _keywords(metric_class, 0))
    if "ruler" in metric_class.consumes:  # the ruler is passed as the replacement
        assert "replacement" in _keywords(metric_class, 0)
    assert metric_class.consumes - {"seed", "ruler"} <= set(_keywords(metric_class.__call__, 4))


def test_declared_minimums_are_the_explainers_own():
    from xaibench.explain.permutation import min_max_evals

    for name in registry.explainers:
        minimums = registry.explainers.entry(name).minimums
        assert set(minimums) <= set(_keywords(registry.explainers.get(name), 3)), name
    minimum = registry.explainers.entry("permutation").minimums["max_evals"]
    for shape in ((28, 28, 1), (8, 8, 1), (32, 32, 3)):
        assert minimum.of(shape[0] * shape[1] * shape[2]) == min_max_evals(shape)
    assert str(minimum) == "2*M+1"


def test_patch_counts_superpixels_for_the_per_feature_minimums(tiny_toml):
    text = tiny_toml.replace('name = "partition"\nmaskers = ["blur(3,3)"]\n'
                             'params = { max_evals = 40 }',
                             'name = "permutation"\nparams = { patch = 2 }\nbudget = [33, 40]')
    [permutation, _] = parse_config(text).explainers
    assert permutation.params == {"patch": 2} and permutation.budgets == (33, 40)
    with pytest.raises(ConfigError, match=r"budget: max_evals = 33 is below .* = 129 for M = 64"):
        parse_config(text.replace("params = { patch = 2 }\n", ""))


def test_every_masking_explainer_groups_features_with_patch():
    for name in registry.explainers:
        if "masker" in registry.explainers.entry(name).consumes:
            assert "patch" in _keywords(registry.explainers.get(name), 3), name


def test_validation_with_every_check_imports_no_framework(tiny_toml, tmp_path):
    metrics = [m for m in registry.metrics if "masks" not in registry.metrics.get(m).consumes]
    path = tmp_path / "all.toml"
    path.write_text(tiny_toml.replace('metrics = ["additivity"]', f"metrics = {metrics}")
                    .replace('name = "partition"', 'name = "permutation"')
                    .replace("max_evals = 40", ""))
    code = ("import sys; from xaibench.cli import main; assert main(['validate', sys.argv[1]]) "
            "== 0; print(sorted({'torch', 'tensorflow', 'jax', 'shap', 'cv2', 'sklearn', 'PIL'} "
            "& set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).parents[3])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]", "config validation imported a framework"
