"""Conformance checks every backend and explainer must pass (after scikit-learn's check_estimator).

The test-suite parametrises these over the registries; third-party backends can call them too.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from xaibench.backend import Attribution, Backend
from xaibench.errors import XaibenchError


def sample_images(backend: Backend, n: int, seed: int = 0) -> np.ndarray:
    """``n`` random images in the backend's value range (NHWC float32)."""
    low, high = backend.spec.value_range
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, size=(n, *backend.spec.shape)).astype(np.float32)


def check_backend(backend: Backend) -> None:
    """Assert ``backend`` honours the Backend protocol (predict, counting, errors, save/load)."""
    x = sample_images(backend, 5)
    evals = backend.n_evals
    scores = backend.predict(x)
    assert scores.shape == (5, backend.spec.n_classes), scores.shape
    assert scores.dtype == np.float32, scores.dtype
    assert np.all(np.isfinite(scores))
    assert backend.n_evals == evals + 5, "predict must count one evaluation per image"
    np.testing.assert_allclose(backend.predict(x[:1]), scores[:1], rtol=1e-4, atol=1e-5,
                               err_msg="prediction must not depend on the batch it is in")
    np.testing.assert_allclose(np.concatenate([backend.predict(x[i:i + 2]) for i in range(0, 5, 2)]),
                               scores, rtol=1e-4, atol=1e-5)
    assert backend.predict(x[:0]).shape == (0, backend.spec.n_classes)
    for bad in (x[0], x[..., :0], x.astype(str)):
        try:
            backend.predict(bad)
        except XaibenchError:
            pass
        else:
            raise AssertionError(f"predict accepted a bad input of shape {bad.shape}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights"
        backend.save(path)
        assert path.exists(), "save must write the given path"
        backend.load(path)
    np.testing.assert_allclose(backend.predict(x), scores, rtol=1e-5, atol=1e-6,
                               err_msg="save then load must not change predictions")


def check_explainer(backend: Backend, method: str, *, additive: bool = True,
                    atol: float = 1e-3, **params: Any) -> Attribution:
    """Assert ``backend.explain(method, ...)`` returns a well-formed, (optionally) additive record."""
    x = sample_images(backend, 3, seed=1)
    scores = backend.predict(x)
    attribution = backend.explain(method, x, 2, **params)
    n, (h, w, c) = len(x), backend.spec.shape
    assert attribution.values.shape == (n, h, w, c, 2), attribution.values.shape
    np.testing.assert_array_equal(attribution.output_indices,
                                  np.argsort(-scores, axis=1, kind="stable")[:, :2])
    np.testing.assert_allclose(attribution.model_outputs,
                               np.take_along_axis(scores, attribution.output_indices, 1),
                               rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(attribution.values)) and np.all(np.isfinite(attribution.base_values))
    assert attribution.wall_seconds > 0 and attribution.model_evals >= 0
    if additive:
        scale = max(1.0, float(np.abs(attribution.model_outputs - attribution.base_values).max()))
        gap = attribution.additivity_gap().max()
        assert gap <= atol * scale, f"{method}: additivity gap {gap:.3g} > {atol * scale:.3g}"
    explicit = backend.explain(method, x, np.arange(n) % backend.spec.n_classes, **params)
    assert explicit.values.shape == (n, h, w, c, 1)
    np.testing.assert_array_equal(explicit.output_indices[:, 0], np.arange(n) % backend.spec.n_classes)
    return attribution
