"""Bad experiment files: each fails validation in milliseconds, before any data is loaded or
model trained, with one line that names the problem and the fix."""

from __future__ import annotations

import time

import pytest

from xaibench import registry
from xaibench.cli import main
from xaibench.errors import ConfigError
from xaibench.experiment.config import load_config, parse_config

from tests.unit.experiment._tiny import TINY_TOML

#: the tiny experiment on 28x28x1 Fashion-MNIST (described without reading its files)
FMNIST_TOML = TINY_TOML.replace('name = "digits"', 'name = "fashion_mnist"')
#: the tiny experiment on synthetic data (which has ground-truth masks)
SYNTHETIC_TOML = TINY_TOML.replace('name = "digits"',
                                   'name = "synthetic"\nparams = { n_classes = 4 }')


@pytest.fixture(scope="module", autouse=True)
def _imported():
    """Validate once with every metric, so the timings below exclude first imports."""
    metrics = [m for m in registry.metrics if "masks" not in registry.metrics.get(m).consumes]
    parse_config(_edit(TINY_TOML, 'metrics = ["additivity"]', f"metrics = {metrics}"))


def _rejected(text: str, match: str) -> str:
    """The one-line message of the ConfigError that validating ``text`` raises fast."""
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=match) as info:
        parse_config(text, origin="x.toml")
    assert time.perf_counter() - start < 1.0
    message = str(info.value)
    assert message.startswith("x.toml: ") and "\n" not in message
    return message


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# --- unknown keys and names: did you mean ---------------------------------------------------
@pytest.mark.parametrize("old, new, match", [
    ("seed = 3", "sede = 3", r"unknown key 'sede' in the top level — did you mean 'seed'\?"),
    ("first = 2", "frist = 2", r"unknown key 'frist' in \[images\] — did you mean 'first'\?"),
    ('backend = "torch"', 'backend = "troch"',
     r"unknown backend 'troch' — did you mean 'torch'\?"),
    ('architecture = "fmnist_cnn"', 'architecture = "fmnist_cn"',
     r"unknown model 'fmnist_cn' — did you mean 'fmnist_cnn'\?"),
    ('name = "digits"', 'name = "fashion-mnist"',
     r"unknown dataset 'fashion-mnist' — did you mean 'fashion_mnist'\?"),
    ('name = "partition"', 'name = "partion"',
     r"unknown explainer 'partion' — did you mean 'partition'"),
    ('"blur(3,3)"', '"blurr(3,3)"', r"unknown masker 'blurr' — did you mean 'blur'\?"),
    ('metrics = ["additivity"]', 'metrics = ["abcp"]',
     r"unknown metric 'abcp' — did you mean 'abpc'\?"),
], ids=["key", "images-key", "backend", "architecture", "dataset", "explainer", "masker",
        "metric"])
def test_unknown_keys_and_names_get_a_suggestion(old, new, match):
    _rejected(_edit(TINY_TOML, old, new), match)


# --- wrong types ----------------------------------------------------------------------------
@pytest.mark.parametrize("old, new, match", [
    ("max_evals = 40", 'max_evals = "40"', r"\(partition\) params: 'max_evals' must be an "
     r"integer, got '40'; write it without quotes: max_evals = 40"),
    ("n_train = 300", "n_train = 1.5", r"\[dataset\]: 'n_train' must be an integer, got 1.5"),
    ("seed = 3", 'seed = "a"', r"'seed' must be an integer, got 'a'$"),
    ("seed = 3", 'seed = "3"', r"'seed' must be an integer, got '3'; write it without quotes: "
     r"seed = 3"),
    ('metrics = ["additivity"]', 'metrics = "abpc"', r"'metrics' must be a list, got 'abpc'; "
     r'write a list: metrics = \["abpc"\]'),
    ("epochs = 1", "epochs = true", r"'epochs' must be an integer, got True"),
    ("max_evals = 40", "max_evals = true", r"'max_evals' must be an integer, got True"),
    ('name = "deep"', 'name = "gradient"\nparams = { nsamples = 2.5 }',
     r"\(gradient\) params: 'nsamples' must be an integer, got 2.5"),
    ('name = "deep"', 'name = "gradient"\nparams = { layer = true }',
     r"'layer' must be a string or an integer, got True"),
    ("n_train = 300", "n_train = 300\nparams = { n_test = 1.5 }",
     r"params of dataset 'digits': 'n_test' must be an integer, got 1.5"),
], ids=["max_evals-string", "n_train-float", "seed-string", "seed-quoted", "metrics-string",
        "epochs-bool",
        "max_evals-bool", "nsamples-float", "layer-bool", "loader-param-float"])
def test_wrong_types(old, new, match):
    _rejected(_edit(TINY_TOML, old, new), match)


# --- zero and negative counts ---------------------------------------------------------------
@pytest.mark.parametrize("old, new, match", [
    ("n_train = 300", "n_train = 300\nparams = { n_test = 0 }",
     r"dataset 'digits' has no test image with params n_test = 0; give the test split at "
     r"least one \(n_test >= 1\)"),
    ("n_train = 300", "n_train = 300\nparams = { n_train = 0 }",
     r"no train image .* \(n_train >= 1\)"),
    ("n_train = 300", "n_train = 0", r"'n_train' must be >= 1, got 0"),
    ("n_background = 5", "n_background = -1", r"'n_background' must be >= 1, got -1"),
    ("max_evals = 40", "max_evals = 0",
     r"max_evals = 0 is below partition's minimum 2; set max_evals >= 2"),
    ("first = 2", "first = 0", r"\[images\] selects no image: set first, correct or wrong "
     r"above 0"),
    ('name = "deep"', 'name = "random"\nparams = { seed = -1 }',
     r"seed = -1 is below random's minimum 0; set seed >= 0"),
], ids=["n_test", "loader-n_train", "n_train", "n_background", "max_evals", "images",
        "seed"])
def test_zero_and_negative_counts(old, new, match):
    _rejected(_edit(TINY_TOML, old, new), match)


def test_permutation_max_evals_below_two_m_plus_one():
    text = _edit(FMNIST_TOML, 'name = "partition"', 'name = "permutation"')
    _rejected(text, r"max_evals = 40 is below permutation's minimum 2\*M\+1 = 1569 for "
                    r"M = 784 features \(H\*W\*C of the 28x28x1 images of dataset "
                    r"'fashion_mnist'\); set max_evals >= 1569")
    parse_config(_edit(text, "max_evals = 40", "max_evals = 1569"))  # the minimum is enough


# --- maskers --------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, match", [
    ("blur(0,3)", r"masker spec 'blur\(0,3\)': blur kernel size kx must be a positive "
                  r"integer, got 0; e.g. 'blur\(8,8\)'"),
    ("blur(a)", r"masker spec 'blur\(a\)': argument 'a' is not a number; masker arguments "
                r"are numbers"),
    ("blur(3", r"malformed masker spec 'blur\(3': expected 'name' or 'name\(arg, ...\)'"),
    ("inpaint_foo", r"unknown masker 'inpaint_foo' — did you mean 'inpaint_ns' or "
                    r"'inpaint_telea'\?"),
    ("blur(100,100)", r"blur kernel kx x ky = 100x100 is larger than the 28x28 \(width x "
                      r"height\) images; use kx <= 28 and ky <= 28"),
    ("inpaint_ns(radius=0)", r"inpainting radius must be a positive number, got 0"),
])
def test_malformed_masker_specs(spec, match):
    _rejected(_edit(FMNIST_TOML, '"blur(3,3)"', f'"{spec}"'), match)


# --- targets, masks, metric params ------------------------------------------------------------
@pytest.mark.parametrize("targets, match", [
    (20, r"\(deep\): targets = 20 asks for the top 20 outputs, but dataset 'digits' has 10 "
         r"classes; set targets <= 10"),
    (0, r"\(deep\): 'targets' must be >= 1, got 0"),
])
def test_targets_beyond_the_classes(targets, match):
    _rejected(_edit(TINY_TOML, 'name = "deep"', f'name = "deep"\ntargets = {targets}'), match)


def test_targets_count_the_classes_the_params_choose():
    text = _edit(SYNTHETIC_TOML, 'name = "deep"', 'name = "deep"\ntargets = 5')
    _rejected(text, r"dataset 'synthetic' has 4 classes; set targets <= 4")


def test_localisation_metrics_need_a_dataset_with_masks():
    metrics = 'metrics = ["relevance_mass", "pointing_game", "gini"]'
    _rejected(_edit(TINY_TOML, 'metrics = ["additivity"]', metrics),
              r"'metrics': relevance_mass, pointing_game need\(s\) ground-truth masks, which "
              r"dataset 'digits' does not have; remove them or use a dataset with masks")
    parse_config(_edit(SYNTHETIC_TOML, 'metrics = ["additivity"]', metrics))


@pytest.mark.parametrize("table, match", [
    ("abcp = { steps = 10 }", r"\[metric_params\] sets 'abcp', which 'metrics' does not list "
                              r"\(metrics: abpc\)"),
    ("abpc = { stpes = 10 }", r"\[metric_params\] abpc: unknown param 'stpes' — did you mean "
                              r"'steps'\?"),
    ("abpc = { steps = 0 }", r"\[metric_params\] abpc: steps must be an integer >= 1, got 0"),
    ('abpc = { space = "logit" }', r"\[metric_params\] abpc: curve space must be one of "
                                   r"\('probability', 'score'\); got 'logit'"),
    ('abpc = { steps = "10" }', r"'steps' must be an integer, got '10'; write it without "
                                r"quotes: steps = 10"),
    ('abpc = { replacement = "blurr" }', r"\[metric_params\] abpc: unknown masker 'blurr' — "
                                         r"did you mean 'blur'\?"),
], ids=["unknown-metric", "unknown-param", "steps-zero", "space", "steps-string",
        "replacement"])
def test_bad_metric_params(table, match):
    text = _edit(TINY_TOML, 'metrics = ["additivity"]',
                 f'metrics = ["abpc"]\n[metric_params]\n{table}')
    _rejected(text, match)


@pytest.mark.parametrize("evaluation, match", [
    ('rulers = ["blur(3,3)", "meen"]', r"\[evaluation\] rulers: unknown ruler 'meen' — did you "
                                       r"mean 'mean'\?; a ruler is one of .*noisy_linear.*zero"),
    ('rulers = ["inpaint_tela"]', r"unknown ruler 'inpaint_tela' — did you mean "
                                  r"'inpaint_telea'"),
    ('rulers = ["blur(9,9)"]', r"\[evaluation\] rulers: masker spec 'blur\(9,9\)': blur kernel "
                               r"kx x ky = 9x9 is larger than the 8x8 \(width x height\) images"),
    ('rulers = ["noisy_linear(-0.1)"]', r"noisy_linear noise must be a number >= 0"),
    ('rulers = ["masker"]', r"'masker' \(each cell's own masker\) would score rows with "
                            r"different rulers"),
    ("rulers = []", r"\[evaluation\] 'rulers' is empty; list at least one"),
    ('rulers = ["mean", "blur(2,2)", "mean"]', r"\[evaluation\] rulers lists a ruler twice"),
    ('rulers = "mean"', r"'rulers' must be a list"),
    ('ruler = ["mean"]', r"unknown key 'ruler' in \[evaluation\] — did you mean 'rulers'\?"),
], ids=["did-you-mean-fill", "did-you-mean-masker", "too-large", "bad-argument", "masker",
        "empty", "twice", "not-a-list", "unknown-key"])
def test_bad_rulers(evaluation, match):
    _rejected(f"{TINY_TOML}\n[evaluation]\n{evaluation}\n", match)


def test_a_metric_scored_per_ruler_may_not_set_its_replacement():
    text = _edit(TINY_TOML, 'metrics = ["additivity"]',
                 'metrics = ["abpc"]\n[metric_params]\nabpc = { replacement = "blur(2,2)" }')
    _rejected(text, r"\[metric_params\] abpc: 'replacement' is set by the rulers of "
                    r"\[evaluation\], .*; list 'blur\(2,2\)' in \[evaluation\] rulers instead")


# --- backends ---------------------------------------------------------------------------------
def test_an_explainer_the_backend_cannot_run_lists_those_it_can(monkeypatch):
    entry = registry.backends.entry("torch")
    monkeypatch.setitem(registry.backends._entries, "torch",
                        type(entry)(**{**vars(entry), "native_explainers": frozenset({"deep"})}))
    text = _edit(TINY_TOML, 'name = "deep"', 'name = "gradient"')
    _rejected(text, r"\[\[explainers\]\] #2 \(gradient\): backend 'torch' \(\[\[models\]\] "
                    r"#1\) cannot run explainer 'gradient' \(backends that can: flax, keras\); "
                    r"it runs: deep, edge, partition, "
                    r"permutation, random — remove the explainer or that model")


# --- datasets described from their params -----------------------------------------------------
def test_image_folder_root_that_does_not_exist(tmp_path):
    text = _edit(TINY_TOML, 'name = "digits"',
                 f'name = "image_folder"\nparams = {{ root = "{tmp_path / "nope"}", size = 8 }}')
    _rejected(text, r"\[dataset\] params: image folder .*nope does not exist: set root to a "
                    r"folder with one subfolder of images per class")


def test_image_folder_with_one_class(tmp_path):
    (tmp_path / "cats").mkdir()
    text = _edit(TINY_TOML, 'name = "digits"',
                 f'name = "image_folder"\nparams = {{ root = "{tmp_path}", size = 8 }}')
    _rejected(text, r"dataset 'image_folder' has 1 class with params root = .*; a classifier "
                    r"needs at least 2 classes")


def test_image_folder_size_decides_the_masker_limit(tmp_path):
    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
    text = _edit(TINY_TOML, 'name = "digits"',
                 f'name = "image_folder"\nparams = {{ root = "{tmp_path}", size = [2, 6] }}')
    _rejected(text, r"larger than the 6x2 \(width x height\) images; use kx <= 6 and ky <= 2")


def test_digits_split_too_small_for_its_classes():
    text = _edit(TINY_TOML, "n_train = 300", "n_train = 300\nparams = { test_fraction = 0.001 }")
    _rejected(text, r"test_fraction = 0.001 leaves a split with fewer images than the 10 "
                    r"classes; use a test_fraction in \[0.006, 0.994\]")


# --- the file itself --------------------------------------------------------------------------
@pytest.mark.parametrize("content, match", [
    (b"", r"x\.toml: the file holds no settings; an experiment needs name, \[dataset\], "
          r"\[\[models\]\] and \[\[explainers\]\]"),
    (b"# only a comment\n\n", r"the file holds no settings"),
    (b"import numpy as np\nprint(np)\n", r"x\.toml: invalid TOML: .*line 1.*; fix the syntax "
                                         r"there"),
    ('name = "caf\u00e9"\n'.encode("latin-1"), r"x\.toml is not UTF-8 text \(byte 0xe9 at "
                                               r"offset 11\); save it as UTF-8 TOML"),
], ids=["empty", "comments-only", "not-toml", "not-utf8"])
def test_unreadable_experiment_files(tmp_path, content, match):
    path = tmp_path / "x.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(path)
    assert "\n" not in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ConfigError, match=r"experiment file .*nope\.toml does not exist; check "
                                          r"the path"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"is a directory; pass an experiment file"):
        load_config(tmp_path)


# --- the command line -------------------------------------------------------------------------
@pytest.mark.parametrize("content, message", [
    (_edit(TINY_TOML, '"blur(3,3)"', '"blur(0,3)"').encode(),
     "blur kernel size kx must be a positive integer, got 0"),
    (_edit(TINY_TOML, 'name = "deep"', 'name = "deep"\ntargets = 20').encode(),
     "targets = 20 asks for the top 20 outputs, but dataset 'digits' has 10 classes; "
     "set targets <= 10"),
    (b"name = \"\xff\"\n", "is not UTF-8 text (byte 0xff at offset 8); save it as UTF-8 TOML"),
], ids=["masker", "targets", "not-utf8"])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_cli_prints_one_line_and_exits_2(tmp_path, capsys, content, message, command):
    path = tmp_path / "x.toml"
    path.write_bytes(content)
    assert main([command, str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(f"xaibench: error: {path}") and message in line
    assert not (tmp_path / "results").exists()
