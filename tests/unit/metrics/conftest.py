"""Fixtures for the metric tests: numpy backends and an explainer registry with 'input'."""

from __future__ import annotations

import numpy as np
import pytest

import xaibench.registry
from tests.unit.metrics._models import TwoLayerNet
from xaibench.testing import LinearBackend
from xaibench.backend import ImageSpec
from xaibench.registry import Registry


@pytest.fixture
def linear(test_seed) -> LinearBackend:
    return LinearBackend.from_zoo("linear", ImageSpec(shape=(6, 6, 3),
                                                      class_names=("a", "b", "c", "d")),
                                  seed=test_seed)


@pytest.fixture
def net(test_seed) -> TwoLayerNet:
    return TwoLayerNet(ImageSpec(shape=(8, 8, 1), class_names=("a", "b", "c")), seed=test_seed)


@pytest.fixture
def images(test_seed):
    """Uniform images in [0, 1] of the given shape: images(n, shape, seed=0); other sets under
    another ``test_seed``."""
    def make(n: int, shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed + 1000 * test_seed)
        return rng.uniform(0, 1, (n, *shape)).astype(np.float32)
    return make


@pytest.fixture
def with_input_explainer(monkeypatch) -> None:
    """The explainer registry plus 'input' (the model-ignoring explainer), for this test only."""
    registry = Registry("explainer")
    for entry in xaibench.registry.explainers.entries():
        registry.adopt(entry)
    registry.register("input", "tests.unit.metrics._models:input_explainer")
    monkeypatch.setattr(xaibench.registry, "explainers", registry)
