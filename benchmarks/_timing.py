"""Timing helpers of the benchmark suite: interleaved repeats, medians, and call recording."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from xaibench import ImageSpec


def image_spec(shape: tuple[int, int, int]) -> ImageSpec:
    """A 10-class spec for images of ``shape`` (the zoo models are built for it)."""
    return ImageSpec(shape=shape, class_names=tuple(str(i) for i in range(10)))


#: the fmnist_cnn input most benchmarks time
SPEC = image_spec((28, 28, 1))


def interleaved_medians(fns: Mapping[str, Callable[[], object]], repeats: int,
                        warmup: int = 1) -> dict[str, float]:
    """Median wall seconds of each of ``fns``, run in turn ``repeats`` times (after ``warmup``
    untimed rounds), so that load on a shared machine hits every one of them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


@dataclass
class RecordingBackend:
    """Stands in for a backend in the model-agnostic explainers (they use ``spec`` and
    ``predict`` only): forwards to ``backend`` and keeps every batch it was called with."""

    backend: object
    batches: list[np.ndarray] = field(default_factory=list)

    @property
    def spec(self) -> ImageSpec:
        return self.backend.spec  # type: ignore[attr-defined]

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.batches.append(np.array(x, copy=True))
        return self.backend.predict(x)  # type: ignore[attr-defined]
