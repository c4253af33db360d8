"""The grid expands into cells whose keys are stable, distinct and sensitive to what matters."""

from __future__ import annotations

from dataclasses import replace

import pytest

from xaibench.errors import ConfigError
from xaibench.experiment.config import parse_config
from xaibench.experiment.plan import data_fingerprint, derive_seed, make_plan, stable_hash


def _keys(text: str) -> dict[str, str]:
    return {cell.label: cell.key for cell in make_plan(parse_config(text)).cells}


def _model_key(text: str) -> str:
    return make_plan(parse_config(text)).models[0].key


def test_grid_expands_models_explainers_and_maskers(tiny_toml):
    text = tiny_toml.replace('"blur(3,3)"', '"blur(3,3)", "inpaint_telea"') + """
[[models]]
backend = "flax"
architecture = "mlp"
"""
    plan = make_plan(parse_config(text))
    assert [m.label for m in plan.models] == ["torch:fmnist_cnn", "flax:mlp"]
    assert [c.label for c in plan.cells] == [
        "partition/blur(3,3)/torch:fmnist_cnn", "partition/inpaint_telea/torch:fmnist_cnn",
        "deep/-/torch:fmnist_cnn",
        "partition/blur(3,3)/flax:mlp", "partition/inpaint_telea/flax:mlp", "deep/-/flax:mlp"]
    assert len({c.key for c in plan.cells}) == 6
    assert [c.label for c in plan.cells_of(plan.models[1])] == [c.label for c in plan.cells[3:]]


def test_keys_are_stable_and_ignore_formatting(tiny_toml):
    assert _keys(tiny_toml) == _keys(tiny_toml)
    reformatted = (tiny_toml.replace('"blur(3,3)"', '"blur(3, 3)"')
                   .replace("{ epochs = 1, batch_size = 32, lr = 1e-2 }",
                            "{ lr = 0.01, batch_size = 32, epochs = 1 }"))
    assert _keys(reformatted) == _keys(tiny_toml)
    # a literal value pins the hash function: keys must not change between versions/processes
    assert stable_hash({"b": [1, 2.5], "a": "x"}) == stable_hash({"a": "x", "b": [1, 2.5]})
    assert stable_hash({"a": 1}) == "015abd7f5cc57a2d"


@pytest.mark.parametrize("old, new, changed", [
    ("seed = 3", "seed = 4", {"partition", "deep"}),
    ("max_evals = 40", "max_evals = 41", {"partition"}),
    ("n_background = 5", "n_background = 6", {"deep"}),  # partition takes no background
    ("first = 2", "first = 3", {"partition", "deep"}),
    ("epochs = 1", "epochs = 2", {"partition", "deep"}),  # through the model key
    ('metrics = ["additivity"]', 'metrics = ["additivity", "gini"]', {"partition", "deep"}),
])
def test_keys_change_with_what_matters(tiny_toml, old, new, changed):
    before, after = _keys(tiny_toml), _keys(tiny_toml.replace(old, new))
    differ = {label.split("/")[0] for label in before if before[label] != after[label]}
    assert differ == changed


def test_changing_the_rulers_changes_the_keys_of_ruler_metrics_only(tiny_toml):
    def keys(metrics: str, rulers: str) -> dict[str, str]:
        return _keys(tiny_toml.replace('metrics = ["additivity"]', metrics)
                     + f"\n[evaluation]\nrulers = {rulers}\n")

    assert keys('metrics = ["abpc"]', '["mean"]') != keys('metrics = ["abpc"]', '["zero"]')
    assert keys('metrics = ["gini"]', '["mean"]') == keys('metrics = ["gini"]', '["zero"]')


def test_model_key_covers_training_and_data_not_explainers(tiny_toml):
    key = _model_key(tiny_toml)
    assert _model_key(tiny_toml.replace("max_evals = 40", "max_evals = 41")) == key
    assert _model_key(tiny_toml.replace("n_train = 300", "n_train = 301")) != key
    assert _model_key(tiny_toml.replace("lr = 1e-2", "lr = 1e-3")) != key
    assert _model_key(tiny_toml.replace("seed = 3", "seed = 0")) != key


def test_cell_seeds_derive_from_keys(tiny_toml):
    plan = make_plan(parse_config(tiny_toml))
    partition, deep = plan.cells
    assert partition.seed == derive_seed(partition.key) != deep.seed
    assert partition.params == {"max_evals": 40, "seed": partition.seed}
    assert deep.params == {}  # deep takes no seed
    pinned = make_plan(parse_config(tiny_toml.replace("max_evals = 40",
                                                      "max_evals = 40, seed = 7"))).cells[0]
    assert pinned.params["seed"] == 7


def test_duplicates_are_rejected(tiny_toml):
    with pytest.raises(ConfigError, match=r"\[\[explainers\]\] #3 repeats the cell "
                                          r"deep/-/torch:fmnist_cnn"):
        make_plan(parse_config(tiny_toml + '\n[[explainers]]\nname = "deep"\n'))
    model = tiny_toml.split("[[models]]")[1].split("[[explainers]]")[0]
    with pytest.raises(ConfigError, match=r"\[\[models\]\] #1 and #2 are the same model"):
        make_plan(parse_config(tiny_toml + "\n[[models]]" + model))


PARITY_MODELS = """
[[models]]
backend = "keras"
architecture = "fmnist_cnn"
weights_from = "torch"

[[models]]
backend = "torch"
architecture = "fmnist_cnn"
train = { epochs = 1, batch_size = 32, lr = 1e-2 }
"""


def _parity(tiny_toml: str) -> str:
    """The tiny experiment with its torch model listed after a Keras copy of it."""
    head, rest = tiny_toml.split("[[models]]", 1)
    return head + PARITY_MODELS + "\n[[explainers]]" + rest.split("[[explainers]]", 1)[1]


def test_copies_are_keyed_by_their_source(tiny_toml):
    plan = make_plan(parse_config(_parity(tiny_toml)))
    keras, torch = plan.models
    assert (keras.weights_from, torch.weights_from) == (torch.key, None)
    assert keras.train == {} and keras.key != torch.key and plan.model(torch.key) is torch
    # the trained model's key is that of the same model without copies
    assert torch.key == make_plan(parse_config(tiny_toml)).models[0].key
    retrained = make_plan(parse_config(_parity(tiny_toml).replace("epochs = 1", "epochs = 2")))
    assert retrained.models[0].weights_from == retrained.models[1].key != torch.key
    assert retrained.models[0].key != keras.key
    assert not {c.key for c in retrained.cells} & {c.key for c in plan.cells}


def test_copies_draw_the_random_numbers_of_their_source(tiny_toml):
    cells = make_plan(parse_config(_parity(tiny_toml))).cells
    keras = {cell.explainer: cell for cell in cells if cell.model.backend == "keras"}
    torch = {cell.explainer: cell for cell in cells if cell.model.backend == "torch"}
    for name in ("partition", "deep"):
        assert keras[name].key != torch[name].key
        assert keras[name].seed == torch[name].seed == derive_seed(torch[name].key)
        assert keras[name].params == torch[name].params
    assert keras["partition"].seed != keras["deep"].seed


def test_the_data_fingerprint_enters_every_key(tiny_toml):
    config = parse_config(tiny_toml)
    unkeyed, a, b = (make_plan(config, fingerprint) for fingerprint in (None, "a" * 64, "b" * 64))
    assert [m.data for m in unkeyed.models] == [None] and a.models[0].data == "a" * 64
    for one, other in ((unkeyed, a), (a, b)):
        assert one.models[0].key != other.models[0].key
        assert not {c.key for c in one.cells} & {c.key for c in other.cells}
    assert [c.key for c in make_plan(config, "a" * 64).cells] == [c.key for c in a.cells]


def test_data_fingerprint_covers_the_data_a_run_uses():
    import numpy as np

    from xaibench.data.base import Dataset

    rng = np.random.default_rng(0)
    base = Dataset("d", rng.random((6, 4, 4, 1), dtype=np.float32), np.arange(6) % 2,
                   rng.random((3, 4, 4, 1), dtype=np.float32), np.arange(3) % 2, ("a", "b"))
    x_train, x_test = base.x_train.copy(), base.x_test.copy()
    x_train[5, 0, 0, 0] = 1 - x_train[5, 0, 0, 0]  # beyond n_train = 5: not used, not hashed
    x_test[0, 0, 0, 0] += 1e-6
    fingerprint = data_fingerprint(base, 5)
    assert data_fingerprint(replace(base, x_train=x_train), 5) == fingerprint
    changed = [replace(base, x_train=x_train), replace(base, x_test=x_test),
               replace(base, y_train=1 - base.y_train), replace(base, class_names=("a", "c")),
               replace(base, x_test=base.x_test.astype(np.float64)),
               replace(base, masks_test=np.zeros((3, 4, 4), bool))]
    digests = [data_fingerprint(base, None)] + [data_fingerprint(d, None) for d in changed]
    assert len(set(digests)) == len(digests) and len(fingerprint) == 64
