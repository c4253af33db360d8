"""Expected gradients for JAX functions: the quantity shap's GradientExplainer computes.

For an input x, ``nsamples`` draws of a background row b (uniform), an interpolation point
t ~ U(0, 1) and, with ``local_smoothing`` s > 0, noise ε ~ N(0, s²) added to x give
x̃ = x + ε and φ = mean over draws of ∇f(t·x̃ + (1 − t)·b) × (x̃ − b)
(``shap/explainers/_gradient.py``, PyTorch variant: the noise is added to the explained input).
The same draws serve every explained output of an image. Draws come from ``jax.random`` keys,
so values match shap's in distribution, not sample by sample.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np


@partial(jax.jit, static_argnames=("nsamples",))
def _draw(key: jax.Array, x: jax.Array, background: jax.Array, local_smoothing: jax.Array, *,
          nsamples: int) -> tuple[jax.Array, jax.Array]:
    """The sample points t·x̃ + (1 − t)·b and the differences x̃ − b, each (nsamples, ...)."""
    key_row, key_t, key_noise = jax.random.split(key, 3)
    refs = background[jax.random.randint(key_row, (nsamples,), 0, background.shape[0])]
    t = jax.random.uniform(key_t, (nsamples,) + (1,) * x.ndim, dtype=x.dtype)
    noisy = x + local_smoothing * jax.random.normal(key_noise, (nsamples, *x.shape), x.dtype)
    return t * noisy + (1 - t) * refs, noisy - refs


@partial(jax.jit, static_argnames=("fn",))
def _summed_gradients(fn: Callable[[Any, jax.Array], jax.Array], params: Any, points: jax.Array,
                      delta: jax.Array, outputs: jax.Array) -> jax.Array:
    """Σ over rows of ∇ fn(params, points)[:, k] × delta, for each output k: (K, ...)."""
    scores, pullback = jax.vjp(lambda p: fn(params, p), points)

    def one_output(k: jax.Array) -> jax.Array:
        onehot = jax.nn.one_hot(k, scores.shape[1], dtype=scores.dtype)
        (grad,) = pullback(jnp.broadcast_to(onehot, scores.shape))
        return jnp.sum(grad * delta, axis=0)

    return jax.vmap(one_output)(outputs)


def image_attributions(fn: Callable[[Any, jax.Array], jax.Array], params: Any, key: jax.Array,
                       x: np.ndarray, background: np.ndarray, outputs: np.ndarray, *,
                       nsamples: int, local_smoothing: float, chunk: int) -> np.ndarray:
    """Expected gradients of ``fn(params, ·)[:, outputs]`` at one input ``x``: (K, *x.shape).

    Gradients are taken ``chunk`` samples at a time (one compiled shape: the last chunk is
    padded with zero differences, which contribute nothing); results do not depend on it.
    """
    points, delta = _draw(key, x, background, jnp.float32(local_smoothing), nsamples=nsamples)
    n_chunks = -(-nsamples // chunk)
    padding = [(0, n_chunks * chunk - nsamples)] + [(0, 0)] * x.ndim
    points, delta = jnp.pad(points, padding), jnp.pad(delta, padding)
    total = sum(_summed_gradients(fn, params, points[i:i + chunk], delta[i:i + chunk], outputs)
                for i in range(0, n_chunks * chunk, chunk))
    return np.asarray(total) / nsamples
