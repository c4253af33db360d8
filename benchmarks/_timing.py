"""Shared by the predict benchmarks: the model spec, per-call timing and the ratio table."""

from __future__ import annotations

import argparse
import time
from typing import Callable, Sequence

import numpy as np

from xaibench import ImageSpec
from xaibench.backend import Backend

#: the fmnist_cnn input the predict benchmarks time
SPEC = ImageSpec(shape=(28, 28, 1), class_names=tuple(str(i) for i in range(10)))


def calls_argument(doc: str) -> int:
    """The ``--calls`` command-line option (timed calls per measurement) of a benchmark."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="timed calls per measurement")
    return parser.parse_args().calls


def ms_per_call(fn: Callable[[], object], calls: int) -> float:
    """Median wall time of ``calls`` calls in milliseconds (after two warm-up calls)."""
    fn(), fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def compare_predict(backend: Backend, slow_label: str, slow: Callable[[np.ndarray], object],
                    batch_sizes: Sequence[int], calls: int, slow_calls: int) -> None:
    """Print ms per call of ``slow(x)`` (``slow_calls`` timed calls) and of ``backend.predict``
    (``calls``), and their ratio, for random images in batches of ``batch_sizes``."""
    rng = np.random.default_rng(0)
    print(f"{'batch':>5}  {slow_label}  {'backend.predict ms':>18}  {'ratio':>6}")
    for n in batch_sizes:
        x = rng.uniform(size=(n, *backend.spec.shape)).astype(np.float32)
        slow_ms = ms_per_call(lambda: slow(x), slow_calls)
        fast_ms = ms_per_call(lambda: backend.predict(x), calls)
        print(f"{n:>5}  {slow_ms:>{len(slow_label)}.3f}  {fast_ms:>18.3f}  "
              f"{slow_ms / fast_ms:>5.1f}x")
