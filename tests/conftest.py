"""Fixtures shared by every test directory."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def test_seed() -> int:
    """Seed of the tests whose data, models or explanations are random: ``XAIBENCH_TEST_SEED``
    (default 0), so that the suite can be run under other seeds."""
    value = os.environ.get("XAIBENCH_TEST_SEED", "0")
    try:
        return int(value)
    except ValueError:
        raise pytest.UsageError(f"XAIBENCH_TEST_SEED = {value!r} is not an integer; "
                                f"set it to one, e.g. XAIBENCH_TEST_SEED=1") from None


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    """A checkpoint cache shared by the session's torch runs: each small model trains once."""
    pytest.importorskip("torch")
    return tmp_path_factory.mktemp("checkpoints")
