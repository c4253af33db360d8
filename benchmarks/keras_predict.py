"""Keras ``model.predict`` vs ``KerasBackend.predict`` (tf.function, fixed signature).

Prints milliseconds per call and the ratio for 1-image calls (what shap's explainers and the
metrics do most) and for a 64-image batch, on the fmnist_cnn at 28x28x1.

    python benchmarks/keras_predict.py [--calls 200]
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Callable

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from backends.keras_backend import KerasBackend  # noqa: E402
from xaibench import ImageSpec  # noqa: E402

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

    backend = KerasBackend.from_zoo("fmnist_cnn", SPEC, seed=0)
    rng = np.random.default_rng(0)
    print(f"{'batch':>5}  {'model.predict ms':>16}  {'backend.predict ms':>18}  {'ratio':>6}")
    for n in (1, 64):
        x = rng.uniform(size=(n, *SPEC.shape)).astype(np.float32)
        slow = ms_per_call(lambda: backend.model.predict(x, verbose=0), max(args.calls // 5, 5))
        fast = ms_per_call(lambda: backend.predict(x), args.calls)
        print(f"{n:>5}  {slow:>16.3f}  {fast:>18.3f}  {slow / fast:>5.1f}x")


if __name__ == "__main__":
    main()
