"""Conformance checks every backend and explainer must pass (after scikit-learn's check_estimator).

The test-suite parametrises these over the registries; third-party backends can call them too.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from xaibench.backend import Attribution, Backend, ImageSpec, Weights
from xaibench.errors import XaibenchError


def sample_images(backend: Backend, n: int, seed: int = 0) -> np.ndarray:
    """``n`` random images in the backend's value range (NHWC float32)."""
    low, high = backend.spec.value_range
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, size=(n, *backend.spec.shape)).astype(np.float32)


def check_backend(backend: Backend) -> None:
    """Assert ``backend`` honours the Backend protocol (predict, counting, errors, save/load,
    weights: ``set_weights(get_weights())`` keeps predictions, for a backend that declares
    :attr:`~xaibench.backend.Backend.has_weight_tensors`)."""
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
    if not backend.has_weight_tensors:  # declared absent: each says so with an error
        for call in (backend.get_weights, backend.layer_names, lambda: backend.randomized(1)):
            try:
                call()
            except XaibenchError:
                continue
            raise AssertionError("a backend without weight tensors must refuse weights and "
                                 "randomisation with an XaibenchError")
        return
    weights = backend.get_weights()
    assert all(isinstance(array, np.ndarray) for params in weights.values()
               for array in params.values()), "get_weights must return numpy arrays"
    backend.set_weights(weights)
    np.testing.assert_allclose(backend.predict(x), scores, rtol=1e-5, atol=1e-6,
                               err_msg="set_weights(get_weights()) must not change predictions")


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


class InferenceOnlyBackend(Backend):
    """Base for test backends that only predict: training and checkpoints are unsupported."""

    trainable = False

    @classmethod
    def from_zoo(cls, architecture: str, spec: ImageSpec, *, seed: int = 0,
                 **arch_params: Any) -> Backend:
        raise NotImplementedError(f"{cls.__name__} has no zoo")

    def fit(self, x: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int, lr: float,
            seed: int) -> dict[str, list[float]]:
        raise NotImplementedError(f"{type(self).__name__} cannot be trained")

    def save(self, path: Path) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no checkpoints")

    def load(self, path: Path) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no checkpoints")


class LinearBackend(InferenceOnlyBackend):
    """f(x) = flatten(x) @ W + b, a model whose SHAP values are known in closed form.

    Its native ``deep`` explanation is exact SHAP against the mean background image m:
    φ = W[:, k] ⊙ (x − m), base = f(m).
    """

    name = "numpy-linear"
    native_methods = {"deep": ()}

    def __init__(self, spec: ImageSpec, weights: np.ndarray, bias: np.ndarray,
                 **kwargs: Any) -> None:
        super().__init__(spec, **kwargs)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.bias = np.asarray(bias, dtype=np.float64)

    @classmethod
    def from_zoo(cls, architecture: str, spec: ImageSpec, *, seed: int = 0,
                 **arch_params: Any) -> "LinearBackend":
        """Random normal weights and bias (``architecture`` is ignored)."""
        rng = np.random.default_rng(seed)
        return cls(spec, rng.normal(size=(int(np.prod(spec.shape)), spec.n_classes)),
                   rng.normal(size=spec.n_classes), **arch_params)

    def scores64(self, x: np.ndarray) -> np.ndarray:
        """Scores in float64 (the analytic reference), not counted as evaluations."""
        return np.asarray(x, np.float64).reshape(len(x), -1) @ self.weights + self.bias

    def _predict_batch(self, x: np.ndarray) -> np.ndarray:
        return self.scores64(x)

    def get_weights(self) -> Weights:
        return {"dense": {"kernel": self.weights.copy(), "bias": self.bias.copy()}}

    def _set_weights(self, weights: Weights) -> None:
        self.weights = np.array(weights["dense"]["kernel"], dtype=np.float64)
        self.bias = np.array(weights["dense"]["bias"], dtype=np.float64)

    def _native_explain(self, method: str, x: np.ndarray, output_indices: np.ndarray, *,
                        background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        reference = np.asarray(background, np.float64).mean(axis=0)
        w = self.weights.T[output_indices].reshape(*output_indices.shape, *x.shape[1:])
        values = np.moveaxis(w * (x.astype(np.float64) - reference)[:, None], 1, -1)
        return values, self.scores64(reference[None])[0][output_indices]
