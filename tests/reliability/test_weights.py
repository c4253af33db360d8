"""Weights that do not fit a model are refused naming every mismatch and the fix."""

from __future__ import annotations

import numpy as np
import pytest

from xaibench import ImageSpec
from xaibench.errors import ConfigError
from xaibench.testing import LinearBackend

SPEC = ImageSpec(shape=(2, 2, 1), class_names=("a", "b", "c"))
FIX = "copy weights between models of the same architecture and params"


@pytest.fixture()
def linear() -> LinearBackend:
    return LinearBackend.from_zoo("linear", SPEC, seed=0)


@pytest.mark.parametrize("edit, problem", [
    (lambda w: {"head": w["dense"]}, "missing layer 'dense'; unexpected layer 'head'"),
    (lambda w: {"dense": {"kernel": w["dense"]["kernel"]}},
     r"layer 'dense' has \['kernel'\], the numpy-linear model expects \['bias', 'kernel'\]"),
    (lambda w: {"dense": {**w["dense"], "bias": np.zeros(4)}},
     r"'dense/bias' has shape \(4,\), the numpy-linear model expects \(3,\)"),
])
def test_weights_of_another_layout_are_refused(linear, edit, problem):
    before = linear.get_weights()
    with pytest.raises(ConfigError, match=f"weights do not fit the numpy-linear model: "
                                          f"{problem}; {FIX}"):
        linear.set_weights(edit(linear.get_weights()))
    np.testing.assert_array_equal(linear.get_weights()["dense"]["kernel"],
                                  before["dense"]["kernel"])


def test_weights_of_the_same_layout_are_copied(linear):
    other = LinearBackend.from_zoo("linear", SPEC, seed=1)
    other.set_weights(linear.get_weights())
    x = np.random.default_rng(0).random((3, *SPEC.shape), dtype=np.float32)
    np.testing.assert_array_equal(other.predict(x), linear.predict(x))
