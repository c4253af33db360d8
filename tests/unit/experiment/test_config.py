"""Experiment files: a valid one parses into dataclasses; every mistake fails fast and clearly."""

from __future__ import annotations

import sys
import time

import pytest

from xaibench.errors import ConfigError
from xaibench.experiment.config import (TRAIN_DEFAULTS, ExplainerConfig, ImagesConfig,
                                        load_config, parse_config)


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
     "'max_evals'? (it takes: max_evals=500, batch_size=50, seed=0)"),
    ('n_train = 300', 'n_train = 300\nparams = { tes_fraction = 0.5 }',
     "[dataset] params of dataset 'digits': unknown param 'tes_fraction' — did you mean "
     "'test_fraction'?"),
    ('name = "deep"', 'name = "deep"\nparams = { nsamples = 10 }',
     "[[explainers]] #2 (deep) params: unknown param 'nsamples' (it takes: no params)"),
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
    # architectures must exist for the backend
    ('architecture = "fmnist_cnn"', 'architecture = "vgg16_transfer"',
     "architecture 'vgg16_transfer' is not implemented for backend 'torch' (it is for: keras)"),
    ('architecture = "fmnist_cnn"', 'architecture = "fmnist"',
     "unknown model 'fmnist' — did you mean 'fmnist_cnn'?"),
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
    with pytest.raises(ConfigError, match=r"cannot read experiment file .*nope\.toml"):
        load_config(tmp_path / "nope.toml")


def test_load_config_reads_the_file(tmp_path, tiny_toml):
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_toml)
    assert load_config(path) == parse_config(tiny_toml)
