"""Metrics: each a class with ``name``, ``higher_is_better``, ``category``; (N, K) scores."""

from xaibench.metrics.base import Metric

__all__ = ["Metric"]
