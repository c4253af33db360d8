"""A tiny torch CNN backend and smooth test images for the model-agnostic explainer tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from xaibench.backend import ImageSpec
from xaibench.testing import InferenceOnlyBackend


class TinyTorchBackend(InferenceOnlyBackend):
    """A few random-weight torch layers (conv, conv, linear) over NHWC numpy input."""

    name = "torch-test"

    def __init__(self, spec: ImageSpec, seed: int = 0, **kwargs: Any) -> None:
        import torch

        super().__init__(spec, **kwargs)
        h, w, c = spec.shape
        torch.manual_seed(seed)
        self.model = torch.nn.Sequential(
            torch.nn.Conv2d(c, 4, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(4, 4, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Flatten(),
            torch.nn.Linear(4 * ((h + 1) // 2) * ((w + 1) // 2), spec.n_classes),
        ).eval()

    def _predict_batch(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
        return out.numpy()


def smooth_images(n: int, shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """Smooth random images in [0, 1] (sums of low-frequency waves), NHWC float32."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    out = np.empty((n, h, w, c), np.float32)
    for i in range(n):
        for ch in range(c):
            a, b, p = rng.uniform(0.5, 2.0), rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi)
            out[i, :, :, ch] = 0.5 + 0.4 * np.sin(np.pi * (a * xx + b * yy) + p)
    return out
