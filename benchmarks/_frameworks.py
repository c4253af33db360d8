"""Per framework: the zoo backend and the reference calls the suite compares it against.

* ``raw``: the compiled framework call on a numpy batch, numpy out — what ``predict`` wraps;
* ``tutorial``: the callable the tutorials hand to shap (Keras ``model.predict``, un-jitted
  Flax ``module.apply``, a torch module called without ``inference_mode``);
* ``forward_backward``: one forward and backward pass of the summed output, the least work a
  gradient explainer does per row.

Each framework is imported once, the first time one of its harnesses is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from xaibench import ImageSpec
from xaibench.backend import Backend

Call = Callable[[np.ndarray], object]


@dataclass
class Harness:
    """A framework's backend and reference calls (see the module docstring)."""

    framework: str
    backend: Backend
    raw: Call
    tutorial: Call
    forward_backward: Call


def torch_harness(spec: ImageSpec, architecture: str = "fmnist_cnn") -> Harness:
    import torch

    from backends.torch_backend import TorchBackend

    backend = TorchBackend.from_zoo(architecture, spec, seed=0)
    module = backend.module

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).permute(0, 3, 1, 2)

    def raw(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(tensor(x)).numpy()

    def tutorial(x: np.ndarray) -> np.ndarray:
        return module(tensor(x)).detach().numpy()

    def forward_backward(x: np.ndarray) -> None:
        t = tensor(x).contiguous().requires_grad_(True)
        module(t).sum().backward()

    return Harness("torch", backend, raw, tutorial, forward_backward)


def keras_harness(spec: ImageSpec, architecture: str = "fmnist_cnn") -> Harness:
    from backends.keras_backend import KerasBackend  # sets TF_CPP_MIN_LOG_LEVEL before TF loads
    import tensorflow as tf

    backend = KerasBackend.from_zoo(architecture, spec, seed=0)
    model = backend.model
    compiled = tf.function(lambda t: model(t, training=False), reduce_retracing=True)

    @tf.function(reduce_retracing=True)
    def gradient(t: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(t)
            total = tf.reduce_sum(model(t, training=False))
        return tape.gradient(total, t)

    return Harness("keras", backend, lambda x: compiled(tf.convert_to_tensor(x)).numpy(),
                   lambda x: model.predict(x, verbose=0),
                   lambda x: gradient(tf.convert_to_tensor(x)).numpy())


def flax_harness(spec: ImageSpec, architecture: str = "fmnist_cnn") -> Harness:
    import jax

    from backends.flax_backend import FlaxBackend

    backend = FlaxBackend.from_zoo(architecture, spec, seed=0)
    module, variables = backend.module, backend.variables
    compiled = jax.jit(module.apply)
    gradient = jax.jit(jax.grad(lambda v, x: module.apply(v, x).sum(), argnums=1))
    return Harness("flax", backend, lambda x: np.asarray(compiled(variables, x)),
                   lambda x: np.asarray(module.apply(variables, x)),
                   lambda x: np.asarray(gradient(variables, x)))


HARNESSES: dict[str, Callable[..., Harness]] = {
    "torch": torch_harness, "keras": keras_harness, "flax": flax_harness}
