"""Rankings must not depend on float round-off (the same model in two frameworks)."""

import numpy as np

from xaibench.metrics._ranking import TIE_RTOL, descending_positions


def test_round_off_does_not_reorder_tied_blocks():
    rng = np.random.default_rng(0)
    blocks = np.repeat(rng.normal(size=(2, 8)), 4, axis=-1)        # partition-like equal blocks
    noisy = blocks * (1 + rng.uniform(-1, 1, blocks.shape) * TIE_RTOL * 1e-3)
    np.testing.assert_array_equal(descending_positions(noisy), descending_positions(blocks))


def test_distinct_values_keep_their_order():
    relevance = np.array([[0.1, 0.5, -0.2, 0.5 + 1e-3, 0.0]])
    np.testing.assert_array_equal(descending_positions(relevance), [[2, 1, 4, 0, 3]])
