"""Fixtures for the model-agnostic explainer tests."""

from __future__ import annotations

import pytest

from tests.unit.explain._backends import TinyTorchBackend
from xaibench.testing import LinearBackend
from xaibench.backend import ImageSpec


@pytest.fixture
def linear_backend() -> LinearBackend:
    spec = ImageSpec(shape=(4, 4, 2), class_names=("a", "b", "c", "d"))
    return LinearBackend.from_zoo("linear", spec, seed=0)


@pytest.fixture(scope="module")
def torch_backend() -> TinyTorchBackend:
    pytest.importorskip("torch")
    spec = ImageSpec(shape=(8, 8, 1), class_names=("a", "b", "c"))
    return TinyTorchBackend(spec, seed=0, batch_size=64)
