"""A pure-numpy ReLU network with closed-form gradients, and a model-ignoring explainer."""

from __future__ import annotations

from typing import Any

import numpy as np

from xaibench.backend import Backend, ImageSpec
from xaibench.testing import InferenceOnlyBackend


class TwoLayerNet(InferenceOnlyBackend):
    """dense1 -> ReLU -> dense2 on the flattened image. Its 'gradient' explanation is
    gradient × (x − mean background), computed analytically."""

    name = "numpy-mlp"
    native_methods = {"gradient": ("nsamples", "local_smoothing", "seed", "layer")}

    def __init__(self, spec: ImageSpec, hidden: int = 32, seed: int = 0) -> None:
        super().__init__(spec)
        rng = np.random.default_rng(seed)
        sizes = (int(np.prod(spec.shape)), hidden, spec.n_classes)
        self.layers = [self._init(rng, n_in, n_out) for n_in, n_out in zip(sizes, sizes[1:])]

    @staticmethod
    def _init(rng: np.random.Generator, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        return rng.normal(0, np.sqrt(2 / n_in), size=(n_in, n_out)), rng.normal(0, 0.1, n_out)

    def layer_names(self) -> list[str]:
        return ["dense1", "dense2"]

    def randomized(self, n_layers: int, *, seed: int = 0) -> "TwoLayerNet":
        copy = TwoLayerNet.__new__(TwoLayerNet)
        Backend.__init__(copy, self.spec)
        rng = np.random.default_rng(seed)
        keep = len(self.layers) - n_layers
        copy.layers = self.layers[:keep] + [self._init(rng, *w.shape)
                                            for w, _ in self.layers[keep:]]
        return copy

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        (w1, b1), (w2, b2) = self.layers
        pre = np.asarray(x, np.float64).reshape(len(x), -1) @ w1 + b1
        return pre, np.maximum(pre, 0) @ w2 + b2

    def _predict_batch(self, x: np.ndarray) -> np.ndarray:
        return self._forward(x)[1]

    def _native_explain(self, method: str, x: np.ndarray, output_indices: np.ndarray, *,
                        background: np.ndarray, **_: Any) -> tuple[np.ndarray, np.ndarray]:
        (w1, _b1), (w2, _b2) = self.layers
        pre, _ = self._forward(x)
        # d f_k / d x = W1 (relu'(pre) ⊙ W2[:, k]) for every image n and output k: (N, K, D)
        grads = np.einsum("dh,nh,nhk->nkd", w1, (pre > 0).astype(float), w2[:, output_indices]
                          .transpose(1, 0, 2))
        delta = (x.astype(np.float64) - background.mean(axis=0)).reshape(len(x), 1, -1)
        values = np.moveaxis((grads * delta).reshape(*output_indices.shape, *x.shape[1:]), 1, -1)
        base = self._forward(background)[1].mean(axis=0)[output_indices]
        return values, base


def input_explainer(backend: Backend, x: np.ndarray,
                    output_indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ignores the model: the 'attribution' of every output is the image itself."""
    k = output_indices.shape[1]
    return np.repeat(x[..., None], k, axis=-1), np.zeros(output_indices.shape)
