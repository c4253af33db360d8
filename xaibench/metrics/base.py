"""The metric interface: class-level metadata, numpy in, numpy out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Hashable

import numpy as np

from xaibench.backend import Attribution, Backend
from xaibench.errors import ConfigError


def check_count(name: str, value: Any, minimum: int) -> int:
    """``value`` (a metric's count parameter) as int; ConfigError unless an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class MetricContext:
    """What the metrics of one cell (one backend, images, attribution and masker) share.

    ``memo`` holds intermediate results that several metrics need, under keys the metrics
    choose (e.g. perturbation curves, computed once for deletion, insertion and ABPC);
    ``arrays`` are the arrays the metrics hand on to be stored with the cell.
    """

    def __init__(self) -> None:
        self.memo: dict[Hashable, Any] = {}
        self.arrays: dict[str, np.ndarray] = {}

    def keep(self, name: str, array: np.ndarray) -> None:
        """Hand ``array`` on under ``name``; the first array given a name is the one kept."""
        self.arrays.setdefault(name, np.asarray(array))


#: what the runner supplies to a metric that declares it in ``consumes``: ``seed`` (constructor
#: keyword: the cell's seed unless the config's metric_params set it), ``ruler`` (constructor
#: keyword ``replacement``: the metric is scored once per ``[evaluation]`` ruler) and the call
#: keywords
#: ``masker`` (the cell's masker spec), ``masks`` (ground-truth masks: the dataset must have
#: them), ``context`` (the cell's :class:`MetricContext`) and ``explain_params`` (every param
#: given to ``backend.explain``, arrays such as the background included)
METRIC_INPUTS = ("seed", "ruler", "masker", "masks", "context", "explain_params")


class Metric(ABC):
    """A score per image and explained output, shape (N, K), with its direction of "better".

    What it needs besides the backend, images and attribution is declared in :attr:`consumes`.
    """

    name: ClassVar[str]
    higher_is_better: ClassVar[bool]
    #: e.g. "faithfulness", "complexity"; reports rank every category but "correctness" (checks
    #: an explainer passes by construction, such as additivity) and "cost"
    category: ClassVar[str]
    #: the :data:`METRIC_INPUTS` it takes
    consumes: ClassVar[frozenset[str]] = frozenset()
    #: whether it re-initialises the model's layers (``Backend.randomized``): backends without
    #: weight tensors (registry entry ``weight_tensors``) cannot be scored by it
    randomises_model: ClassVar[bool] = False

    @abstractmethod
    def __call__(self, backend: Backend, x: np.ndarray, attribution: Attribution, *,
                 masker: str | None = None, masks: np.ndarray | None = None) -> np.ndarray:
        """Scores (N, K) for the images ``x`` explained by ``attribution``."""
