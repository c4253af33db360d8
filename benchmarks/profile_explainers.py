"""Where a model-agnostic explainer spends its time: cProfile's share per package.

Explains two 28x28x1 images with the torch fmnist_cnn three times (``--shape``, ``--images``,
``--repeats`` change that; ``--patch`` groups pixels into superpixels) and prints the share of
the profiled time in shap, scipy (shap's sparse mask matrices), numpy, torch and xaibench, the
share of each component of the explanation (cumulative times: the model evaluations, our
masker and model function, shap's loops), and the top functions by own time. A warm-up on one
28x28x1 image compiles shap's numba code first.

    OMP_NUM_THREADS=1 python -m benchmarks.profile_explainers partition "blur(8,8)"
    OMP_NUM_THREADS=1 python -m benchmarks.profile_explainers permutation "blur(8,8)" \
        --shape 224,224,3 --patch 8 --images 1 --repeats 1
"""

from __future__ import annotations

import argparse
import cProfile
import pstats

from benchmarks.__main__ import EXPLAINERS, images, top1
from benchmarks._frameworks import torch_harness
from benchmarks._timing import SPEC, image_spec
from xaibench.explain.maskers import make_masker

PACKAGES = ("shap", "scipy", "torch", "xaibench", "numpy")


def package_of(filename: str, function: str) -> str:
    for name in PACKAGES:
        if f"/{name}/" in filename or name in function:
            return name
    return "other"


def components(stats: pstats.Stats, explainer: str) -> dict[str, float]:
    """Seconds of each part of the explanation, from cumulative times (they add up to the
    explainer's total)."""
    def cum(path: str, function: str) -> float:
        return sum(row[3] for (filename, _, name), row in stats.stats.items()  # type: ignore[attr-defined]
                   if filename.endswith(path) and name == function)

    total = cum(f"xaibench/explain/{explainer}.py", explainer)
    predict = cum("xaibench/backend.py", "predict")
    fill = cum("xaibench/explain/_image_maskers.py", "_fill_rows")
    masker = cum("xaibench/explain/_image_maskers.py", "__call__")
    model = cum("xaibench/explain/_shap_common.py", "f")
    masked_model = (cum("shap/utils/_masked_model.py", "_full_masking_call")
                    + cum("shap/utils/_masked_model.py", "_delta_masking_call"))
    ours = {"model evaluations (backend.predict)": predict,
            "xaibench: filling masked images": fill,
            "xaibench: masker calls": masker,
            "xaibench: model function": model - predict - fill}
    if explainer == "partition":  # our Owen loop; shap's MaskedModel only for tabular maskers
        evaluations = masked_model or model + masker
        return {**ours,
                "shap: MaskedModel per-mask loop": masked_model and evaluations - model - masker,
                "xaibench: Owen loop, seeding, setup": total - evaluations}
    loop = cum("shap/explainers/_permutation.py", "explain_row")
    return {**ours, "shap: MaskedModel per-mask loop": masked_model - model - masker,
            "shap: permutation loop": loop - masked_model,
            "shap: explainer setup, Explanation; xaibench: seeding": total - loop}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("explainer", choices=sorted(EXPLAINERS))
    parser.add_argument("masker", help="a masker spec, e.g. 'blur(8,8)'")
    parser.add_argument("--shape", default="28,28,1", help="H,W,C of the (noise) images")
    parser.add_argument("--patch", type=int, help="superpixel side (default: pixel-channels)")
    parser.add_argument("--images", type=int, default=2, help="images per explanation")
    parser.add_argument("--repeats", type=int, default=3, help="profiled explanations")
    args = parser.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))
    explain = EXPLAINERS[args.explainer]
    warm = torch_harness(SPEC)
    warm_x = images(SPEC.shape, 1)
    explain(warm.backend, warm_x, top1(warm.backend, warm_x), args.masker)  # numba, imports
    h = torch_harness(image_spec(shape))
    x = images(shape, args.images)
    idx = top1(h.backend, x)
    masker = make_masker(args.masker, shape)
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(args.repeats):
        explain(h.backend, x, idx, masker, patch=args.patch)
    profile.disable()
    stats = pstats.Stats(profile)
    own: dict[str, float] = {}
    for (filename, _, function), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        key = package_of(filename, function)
        own[key] = own.get(key, 0.0) + tottime
    total = sum(own.values())
    print(", ".join(f"{k} {100 * v / total:.0f}%" for k, v in sorted(own.items(),
                                                                      key=lambda kv: -kv[1])))
    parts = components(stats, args.explainer)
    total = sum(parts.values())
    for name, seconds in parts.items():
        print(f"  {name:55s} {100 * seconds / total:5.1f} %")
    stats.sort_stats("tottime").print_stats(10)


if __name__ == "__main__":
    main()
