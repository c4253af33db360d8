"""Budget and seed sweeps of an explainer table: expansion into cells, validation errors."""

from __future__ import annotations

import pytest

from xaibench.errors import ConfigError
from xaibench.experiment.config import parse_config
from xaibench.experiment.plan import make_plan

PARTITION = 'name = "partition"\nmaskers = ["blur(3,3)"]\nparams = { max_evals = 40 }'
#: digits are 8x8x1: permutation needs max_evals >= 2 * 64 + 1
PERMUTATION = 'name = "permutation"\nmaskers = ["blur(3,3)"]'


def _with(tiny_toml: str, explainer: str) -> str:
    assert PARTITION in tiny_toml
    return tiny_toml.replace(PARTITION, explainer)


def test_a_budget_sweep_expands_into_one_cell_per_value(tiny_toml):
    text = _with(tiny_toml, 'name = "partition"\nmaskers = ["blur(3,3)", "inpaint_telea"]\n'
                            'budget = [20, 100, 400]')
    config = parse_config(text)
    assert config.explainers[0].budgets == (20, 100, 400)
    cells = [c for c in make_plan(config).cells if c.explainer == "partition"]
    assert [(c.masker, c.params["max_evals"]) for c in cells] == [
        ("blur(3,3)", 20), ("blur(3,3)", 100), ("blur(3,3)", 400),
        ("inpaint_telea", 20), ("inpaint_telea", 100), ("inpaint_telea", 400)]
    assert len({c.key for c in cells}) == 6


def test_a_seed_sweep_sets_each_cells_seed_and_crosses_with_the_budget(tiny_toml):
    text = _with(tiny_toml, PERMUTATION + "\nbudget = [129, 258]\nseeds = [0, 1, 2]")
    cells = [c for c in make_plan(parse_config(text)).cells if c.explainer == "permutation"]
    assert [(c.params["max_evals"], c.params["seed"]) for c in cells] == [
        (129, 0), (129, 1), (129, 2), (258, 0), (258, 1), (258, 2)]


def test_no_sweep_keeps_the_cells_and_their_keys(tiny_toml):
    plan = make_plan(parse_config(tiny_toml))
    assert [c.params.get("max_evals") for c in plan.cells] == [40, None]
    assert [c.label for c in plan.cells] == ["partition/blur(3,3)/torch:fmnist_cnn",
                                              "deep/-/torch:fmnist_cnn"]


@pytest.mark.parametrize("explainer, message", [
    ('name = "deep"\nbudget = [10, 20]',
     "explainer 'deep' has no evaluation budget; a budget sweep applies to: partition, "
     "permutation"),
    (PERMUTATION + "\nbudget = [129, 100]",
     "[[explainers]] #1 (permutation) budget: max_evals = 100 is below permutation's minimum "
     "2*M+1 = 129"),
    (PARTITION + "\nbudget = [100, 200]",
     "'budget' sets max_evals, which params sets too; remove max_evals from params"),
    (PERMUTATION + "\nbudget = []", "'budget' is empty"),
    (PERMUTATION + "\nbudget = [129, 129]", "'budget' lists a value twice: [129, 129]"),
    (PERMUTATION + '\nbudget = ["300"]', "'budget' must be an integer, got '300'"),
    (PERMUTATION + "\nbudget = 300", "'budget' must be a list, got 300"),
    ('name = "deep"\nseeds = [0, 1]', "explainer 'deep' takes no seed"),
    (PERMUTATION + "\nseeds = [0, -1]", "'seeds' must be >= 0, got -1"),
    (PERMUTATION + "\nparams = { seed = 1 }\nseeds = [0, 1]",
     "'seeds' sets seed, which params sets too; remove seed from params"),
])
def test_sweep_mistakes_fail_at_validation(tiny_toml, explainer, message):
    with pytest.raises(ConfigError) as info:
        parse_config(_with(tiny_toml, explainer), origin="tiny.toml")
    assert message in str(info.value)
