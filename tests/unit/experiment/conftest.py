"""Fixtures of the experiment tests."""

from __future__ import annotations

import pytest

from tests.unit.experiment._tiny import TINY_TOML


@pytest.fixture
def tiny_toml() -> str:
    return TINY_TOML


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty checkpoint cache, also set as $XAIBENCH_CACHE."""
    path = tmp_path / "cache"
    monkeypatch.setenv("XAIBENCH_CACHE", str(path))
    return path
