"""Batched deletion curve vs a per-step predict loop on zoo CNNs (PyTorch, CPU).

Prints, per model, the seconds to compute the deletion curves of N 28x28 images (steps + 1
perturbed images each, removed pixels blurred) with :func:`xaibench.metrics.perturbation_curves`
(all steps of all images in one ``backend.predict`` call) and with a loop calling ``predict``
once per perturbed image, their ratio, and checks that both give the same curves. The ratio
grows with the per-call overhead relative to the per-image compute: small models, many
threads on busy cores, accelerators.

    .venv/bin/python benchmarks/deletion_curve.py [--images 32] [--steps 20] [--repeats 3]
                                                  [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from backends.torch_backend import TorchBackend
from xaibench.backend import Attribution, Backend, ImageSpec
from xaibench.metrics import perturbation_curves
from xaibench.metrics._ranking import descending_positions, pixel_relevance
from xaibench.metrics._replacement import make_filler
from xaibench.metrics.faithfulness import removal_masks


#: (label, zoo architecture, architecture params)
MODELS = (("fmnist_cnn (conv 32-16)", "fmnist_cnn", {}),
          ("fmnist_cnn (conv 8-4)", "fmnist_cnn", {"conv1": 8, "conv2": 4}),
          ("mlp (dense 128)", "mlp", {}))


def loop_deletion_curves(backend: Backend, x: np.ndarray, attribution: Attribution, steps: int,
                         replacement: str) -> np.ndarray:
    """The same deletion curves with one ``predict`` call per perturbed image."""
    n, h, w, _ = x.shape
    fill = make_filler(replacement, None, "blur", backend.spec.shape)
    positions = descending_positions(pixel_relevance(attribution.values))
    targets = attribution.output_indices
    curves = np.empty((*targets.shape, steps + 1))
    for i in range(n):
        for k, target in enumerate(targets[i]):
            for j, removed in enumerate(removal_masks(positions[i, k], "deletion", steps)):
                image = fill(x[i], removed.reshape(1, h, w))
                curves[i, k, j] = backend.predict(image)[0, target]
    return curves


def best_time(fn, repeats: int) -> tuple[float, np.ndarray]:
    """Fastest of ``repeats`` runs (seconds) and the last result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    spec = ImageSpec(shape=(28, 28, 1), class_names=tuple(str(c) for c in range(10)))
    x = np.random.default_rng(0).uniform(0, 1, (args.images, *spec.shape)).astype(np.float32)
    print(f"{args.images} images 28x28x1, {args.steps} steps -> "
          f"{args.images * (args.steps + 1)} perturbed images (blur fill), torch CPU "
          f"{torch.get_num_threads()} thread(s), best of {args.repeats}")
    print(f"{'model':<28} {'batched s':>10} {'loop s':>10} {'speed-up':>9}  max |diff|")
    for label, architecture, params in MODELS:
        backend = TorchBackend.from_zoo(architecture, spec, seed=0, **params)
        attribution = backend.explain("random", x, 1, seed=0)
        batched_s, batched = best_time(lambda: perturbation_curves(
            backend, x, attribution, kinds=("deletion",), steps=args.steps,
            replacement="blur")["deletion"], args.repeats)
        loop_s, loop = best_time(lambda: loop_deletion_curves(
            backend, x, attribution, args.steps, "blur"), args.repeats)
        diff = float(np.abs(batched - loop).max())
        assert diff <= 1e-4 * max(1.0, float(np.abs(loop).max())), diff
        print(f"{label:<28} {batched_s:>10.4f} {loop_s:>10.4f} {loop_s / batched_s:>8.1f}x"
              f"  {diff:.1e}")

if __name__ == "__main__":
    main()
