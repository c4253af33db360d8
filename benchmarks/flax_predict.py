"""Un-jitted ``module.apply`` vs ``FlaxBackend.predict`` (jax.jit, batches padded to buckets).

Prints milliseconds per call and the ratio for 1-image calls and 50-image calls (shap's
Partition explainer calls the model with 1 ... 50 images), on the fmnist_cnn at 28x28x1.
Both return numpy arrays, as a shap callable must.

    python benchmarks/flax_predict.py [--calls 200]
"""

from __future__ import annotations

import numpy as np

from _timing import SPEC, calls_argument, compare_predict
from backends.flax_backend import FlaxBackend


def main() -> None:
    calls = calls_argument(__doc__)
    backend = FlaxBackend.from_zoo("fmnist_cnn", SPEC, seed=0)
    compare_predict(backend, "apply (no jit) ms",
                    lambda x: np.asarray(backend.module.apply(backend.variables, x)),
                    batch_sizes=(1, 50), calls=calls, slow_calls=calls)


if __name__ == "__main__":
    main()
