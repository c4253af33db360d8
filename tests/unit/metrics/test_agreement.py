"""Agreement between attributions: Spearman, top-fraction IoU and the pairwise matrix."""

from __future__ import annotations

import numpy as np
import pytest

from xaibench.backend import Attribution
from xaibench.errors import ConfigError, XaibenchError
from xaibench.metrics import agreement_matrix, spearman_agreement, topk_iou


def record(values: np.ndarray, outputs: np.ndarray | None = None) -> Attribution:
    n, k = values.shape[0], values.shape[-1]
    outputs = np.zeros((n, k), np.int64) if outputs is None else outputs
    return Attribution("test", values, outputs, np.zeros((n, k)), np.zeros((n, k)), 0.0, 0)


@pytest.fixture
def values() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(3, 5, 4, 2, 2))


def test_identical_attributions_agree_fully(values):
    np.testing.assert_allclose(spearman_agreement(values, values), 1.0)
    np.testing.assert_allclose(topk_iou(values, values), 1.0)
    np.testing.assert_allclose(spearman_agreement(values, -values), -1.0)
    np.testing.assert_allclose(spearman_agreement(values, -values, absolute=True), 1.0)
    # a monotone transform of the pixel relevance (here C = 1) keeps the ranking
    one_channel = values[..., :1, :]
    np.testing.assert_allclose(spearman_agreement(one_channel, one_channel ** 3), 1.0)


def test_by_hand():
    a = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    b = np.array([0.0, 4.0, 3.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 9.0])
    as_values = lambda v: v[None, None, :, None, None]  # noqa: E731 (one pixel row, C = K = 1)
    # top 30 %: {0, 1, 2} vs {9, 1, 2} -> IoU 2 / 4
    np.testing.assert_allclose(topk_iou(as_values(a), as_values(b), fraction=0.3), [[0.5]])
    np.testing.assert_allclose(topk_iou(as_values(a), as_values(b), fraction=0.01), [[0.0]])
    x = np.array([0.1, 0, 0, 0, 0])  # ties get average ranks: [5, 2.5, 2.5, 2.5, 2.5]
    y = np.array([0.0, 1, 2, 3, 4])
    expected = np.corrcoef([5, 2.5, 2.5, 2.5, 2.5], [1, 2, 3, 4, 5])[0, 1]  # -1/√2
    np.testing.assert_allclose(spearman_agreement(as_values(x), as_values(y)), [[expected]])
    np.testing.assert_allclose(expected, -1 / np.sqrt(2))
    const = np.zeros(5)
    np.testing.assert_allclose(spearman_agreement(as_values(const), as_values(y)), [[0.0]])
    np.testing.assert_allclose(spearman_agreement(as_values(const), as_values(const)), [[1.0]])


def test_matrix(values):
    rng = np.random.default_rng(1)
    other = values + 0.1 * rng.normal(size=values.shape)
    noise = rng.normal(size=values.shape)
    names, matrix = agreement_matrix({"a": record(values), "b": record(other), "c": noise})
    assert names == ["a", "b", "c"]
    np.testing.assert_allclose(matrix, matrix.T)
    np.testing.assert_allclose(np.diag(matrix), 1.0)
    np.testing.assert_allclose(matrix[0, 1], spearman_agreement(values, other).mean())
    assert matrix[0, 1] > 0.9 and abs(matrix[0, 2]) < 0.3
    _, iou = agreement_matrix({"a": values, "b": other}, "iou", fraction=0.2)
    np.testing.assert_allclose(iou[0, 1], topk_iou(values, other, fraction=0.2).mean())
    with pytest.raises(ConfigError, match="did you mean|unknown"):
        agreement_matrix({"a": values}, "pearson")


def test_mismatched_inputs_are_refused(values):
    with pytest.raises(XaibenchError, match="different outputs"):
        spearman_agreement(record(values), record(values, np.ones((3, 2), np.int64)))
    with pytest.raises(XaibenchError, match="shapes"):
        topk_iou(values, values[:2])
