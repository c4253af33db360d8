"""Un-jitted ``module.apply`` vs ``FlaxBackend.predict`` (jax.jit, batches padded to buckets).

Prints milliseconds per call and the ratio for 1-image calls and 50-image calls (shap's
Partition explainer calls the model with 1 ... 50 images), on the fmnist_cnn at 28x28x1.
Both return numpy arrays, as a shap callable must.

    python benchmarks/flax_predict.py [--calls 200]
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np

from backends.flax_backend import FlaxBackend
from xaibench import ImageSpec

SPEC = ImageSpec(shape=(28, 28, 1), class_names=tuple(str(i) for i in range(10)))


def ms_per_call(fn: Callable[[], object], calls: int) -> float:
    """Median wall time of ``calls`` calls in milliseconds (after two warm-up calls)."""
    fn(), fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="timed calls per measurement")
    args = parser.parse_args()

    backend = FlaxBackend.from_zoo("fmnist_cnn", SPEC, seed=0)
    rng = np.random.default_rng(0)
    print(f"{'batch':>5}  {'apply (no jit) ms':>17}  {'backend.predict ms':>18}  {'ratio':>6}")
    for n in (1, 50):
        x = rng.uniform(size=(n, *SPEC.shape)).astype(np.float32)
        slow = ms_per_call(lambda: np.asarray(backend.module.apply(backend.variables, x)),
                           args.calls)
        fast = ms_per_call(lambda: backend.predict(x), args.calls)
        print(f"{n:>5}  {slow:>17.3f}  {fast:>18.3f}  {slow / fast:>5.1f}x")


if __name__ == "__main__":
    main()
