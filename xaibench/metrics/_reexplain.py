"""Explain again the way an attribution was produced (same explainer, params and outputs).

The record keeps ``attribution.params`` without array values (the background images are
stripped), so metrics that re-explain take ``explain_params``: the full parameters the runner
passed to ``backend.explain``. Without them the record's params are used, and an explainer
that consumes a background (its registry entry's ``consumes``) fails here with a message
saying what to pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xaibench.backend import Attribution, Backend
from xaibench.errors import ConfigError


def explain_like(backend: Backend, attribution: Attribution, x: np.ndarray,
                 output_indices: np.ndarray, explain_params: dict[str, Any] | None,
                 metric: str) -> Attribution:
    """``backend.explain(attribution.method, x, output_indices, **params)``."""
    from xaibench.registry import explainers

    params = dict(attribution.params if explain_params is None else explain_params)
    if "background" in explainers.entry(attribution.method).consumes \
            and "background" not in params:
        raise ConfigError(
            f"metric '{metric}' re-explains with '{attribution.method}', which needs "
            f"background; the attribution record drops array parameters, so pass "
            f"explain_params=<the full params given to backend.explain>")
    return backend.explain(attribution.method, x, output_indices, **params)
