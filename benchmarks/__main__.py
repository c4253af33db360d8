"""The benchmark suite: every ratio of issue 14, side by side in one process, into BENCHMARKS.md.

Each row times the thing measured and its reference in turn (interleaved repeats, medians), so
load from other jobs on a shared machine cancels in the ratio. Rows:

a. ``backend.predict`` vs the raw compiled framework call, batch 1 / 50 / 500 (goal >= 0.9);
b. the callables the tutorials hand to shap vs our ``predict``, at the batch sizes shap's
   PartitionExplainer really calls the model with (goal >= 10x Keras, >= 3x Flax);
c. partition / permutation wall time vs the model-evaluation bound (``predict`` on exactly the
   batches the explainer evaluated), per masker, with the masker's share of the time
   (goal <= 1.15 with blur);
d. deep / gradient seconds per image vs the forward+backward passes they need;
e. peak memory (max RSS of a fresh subprocess) of permutation and partition at 64x64x3 and
   224x224x3, over pixel-channels and over 8x8 superpixels (``patch = 8``) (goal < 2 GB at
   224x224x3);
f. seconds per image of every explainer at 28x28x1, 32x32x3 and 224x224x3, and of partition
   and permutation over 8x8 superpixels;
g. the batched deletion curve vs a per-step ``predict`` loop (goal >= 5x).

    python -m benchmarks [--quick] [--frameworks torch,keras,flax] [--threads 1]
                         [--sections abcdefg] [--output BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks._frameworks import HARNESSES, Harness
from benchmarks._timing import SPEC, RecordingBackend, image_spec, interleaved_medians
from benchmarks.deletion_curve import loop_deletion_curves
from xaibench.backend import Backend
from xaibench.errors import ConfigError
from xaibench.explain.maskers import make_masker, n_features
from xaibench.explain.partition import partition
from xaibench.explain.permutation import permutation
from xaibench.metrics import perturbation_curves

ROOT = Path(__file__).resolve().parent.parent
#: the profile findings behind the goals that do not hold, appended to BENCHMARKS.md
NOTES = Path(__file__).resolve().parent / "notes.md"
#: explainer budgets and batch sizes of rows b, c, f (the tutorials' partition budget)
PARTITION_EVALS = 300
EXPLAINER_BATCH = 50
DEEP_BACKGROUND = 20
MASKERS = ("blur(8,8)", "inpaint_telea")
SHAPES = ((28, 28, 1), (32, 32, 3), (224, 224, 3))
MEMORY_SHAPES = ((64, 64, 3), (224, 224, 3))
MEMORY_LIMIT_MB = 2048
#: every row of the suite (``--sections``)
ALL_SECTIONS = "abcdefg"
#: the superpixel side of the grouped rows of e and f (a 224x224 image: 784 features)
GROUPING_PATCH = 8
DEFAULT_THREADS = "the frameworks' default number of"


@dataclass(frozen=True)
class Settings:
    """How long each row runs: ``--quick`` (a few minutes on 2 cores) or the full suite."""

    repeats: int
    predict_calls: int
    explain_images: int
    gradient_samples: int
    deletion_images: int

    @classmethod
    def of(cls, quick: bool) -> "Settings":
        if quick:
            return cls(repeats=3, predict_calls=10, explain_images=1, gradient_samples=50,
                       deletion_images=8)
        return cls(repeats=7, predict_calls=100, explain_images=8, gradient_samples=200,
                   deletion_images=32)


@dataclass(frozen=True)
class Row:
    """One line of the table: the item of issue 14, what is measured, the result, the goal
    (empty when the row only reports) and whether the goal holds (None: no goal)."""

    item: str
    what: str
    measured: str
    goal: str = ""
    passed: bool | None = None

    def cells(self) -> list[str]:
        verdict = "" if self.passed is None else ("pass" if self.passed else "FAIL")
        return [self.item, self.what, self.measured, self.goal, verdict]


# --- images -------------------------------------------------------------------------------------
def images(shape: tuple[int, int, int], n: int) -> np.ndarray:
    """``n`` test images: real Fashion-MNIST at 28x28x1 when installed, else uniform noise."""
    if shape == (28, 28, 1):
        try:
            from xaibench.data.fashion_mnist import load
            return load(n_train=0, n_test=n).x_test[:n].astype(np.float32)
        except Exception:  # the dataset is optional for the benchmark
            pass
    return np.random.default_rng(0).uniform(0, 1, (n, *shape)).astype(np.float32)


def top1(backend: Backend, x: np.ndarray) -> np.ndarray:
    return backend.predict(x).argmax(axis=1)[:, None].astype(np.int64)


# --- a, b: predict ------------------------------------------------------------------------------
def predict_rows(h: Harness, settings: Settings) -> list[Row]:
    """Row a: raw compiled call ÷ ``backend.predict`` at batch 1 / 50 / 500."""
    rows = []
    for n in (1, 50, 500):
        x = images(SPEC.shape, n)
        calls = max(1, settings.predict_calls // max(1, n // 50))
        t = interleaved_medians({
            "raw": lambda: [h.raw(x) for _ in range(calls)],
            "predict": lambda: [h.backend.predict(x) for _ in range(calls)]}, settings.repeats)
        ratio = t["raw"] / t["predict"]
        rows.append(Row("a", f"{h.framework}: raw compiled call ÷ predict, batch {n} "
                             f"({1e3 * t['predict'] / calls:.2f} ms/call)",
                        f"{ratio:.2f}", ">= 0.9", ratio >= 0.9))
    return rows


#: row b's goals: how many times faster our predict must be than the tutorial callable
TUTORIAL_GOALS = {"keras": 10.0, "flax": 3.0}
TUTORIAL_NAMES = {"torch": "module(x) without inference_mode", "keras": "model.predict",
                  "flax": "un-jitted module.apply"}


def shap_batch_sizes(h: Harness) -> list[int]:
    """The batch sizes PartitionExplainer calls the model with on one image (blur, the
    tutorials' budget)."""
    recording = RecordingBackend(h.backend)
    x = images(SPEC.shape, 1)
    partition(recording, x, top1(h.backend, x), masker="blur(8,8)",  # type: ignore[arg-type]
              max_evals=PARTITION_EVALS, batch_size=EXPLAINER_BATCH, seed=0)
    return [len(b) for b in recording.batches]


def tutorial_row(h: Harness, sizes: list[int], settings: Settings) -> Row:
    """Row b: the tutorial callable ÷ our ``predict`` over shap's batch-size pattern, beside
    its ceiling: the tutorial callable ÷ the raw compiled call on the same batches."""
    batches = [images(SPEC.shape, n) for n in sizes]
    t = interleaved_medians({
        "tutorial": lambda: [h.tutorial(b) for b in batches],
        "predict": lambda: [h.backend.predict(b) for b in batches],
        "raw": lambda: [h.raw(b) for b in batches]}, settings.repeats)
    ratio = t["tutorial"] / t["predict"]
    goal = TUTORIAL_GOALS.get(h.framework)
    return Row("b", f"{h.framework}: {TUTORIAL_NAMES[h.framework]} ÷ predict, "
                    f"{len(sizes)} calls of {sum(sizes)} images (ceiling: ÷ the raw compiled "
                    f"call {t['tutorial'] / t['raw']:.1f}x)",
               f"{ratio:.1f}x", f">= {goal:g}x" if goal else "",
               None if goal is None else ratio >= goal)


# --- c: model-agnostic explainers vs their evaluations ------------------------------------------
class MaskerClock:
    """Adds up the wall seconds a FloatImageMasker spends filling the batches of hidden
    features the explainers defer to it (per-image background included)."""

    def __init__(self, masker: Any) -> None:
        self.seconds = 0.0
        masker._fill_rows = self._timed(masker._fill_rows)

    def _timed(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args)
            finally:
                self.seconds += time.perf_counter() - start
        return timed


EXPLAINERS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "partition": lambda b, x, idx, m, patch=None: partition(
        b, x, idx, masker=m, max_evals=PARTITION_EVALS, batch_size=EXPLAINER_BATCH, seed=0,
        patch=patch),
    "permutation": lambda b, x, idx, m, patch=None: permutation(
        b, x, idx, masker=m, batch_size=EXPLAINER_BATCH, seed=0, patch=patch)}


def bound_row(h: Harness, explainer: str, masker_spec: str, settings: Settings) -> Row:
    """Row c: explainer wall time ÷ ``predict`` on the very batches it evaluated."""
    x = images(SPEC.shape, settings.explain_images)
    idx = top1(h.backend, x)
    masker = make_masker(masker_spec, SPEC.shape)
    clock = MaskerClock(masker)
    explain = EXPLAINERS[explainer]
    recording = RecordingBackend(h.backend)
    explain(recording, x, idx, masker)
    batches = recording.batches
    wall = [0.0]

    def run() -> None:
        start = time.perf_counter()
        explain(h.backend, x, idx, masker)
        wall[0] += time.perf_counter() - start

    clock.seconds = 0.0
    t = interleaved_medians({"explainer": run,
                             "bound": lambda: [h.backend.predict(b) for b in batches]},
                            settings.repeats, warmup=0)
    ratio = t["explainer"] / t["bound"]
    share = clock.seconds / wall[0]
    blur = masker_spec.startswith("blur")
    evals = sum(len(b) for b in batches) / len(x)
    return Row("c", f"{h.framework}: {explainer} + {masker_spec} ÷ its {evals:.0f} evals/image "
                    f"({len(batches)} predict calls); masker {100 * share:.0f}% of the time",
               f"{ratio:.2f}", "<= 1.15" if blur else "", (ratio <= 1.15) if blur else None)


# --- d: gradient explainers vs forward+backward -------------------------------------------------
def native_row(h: Harness, method: str, settings: Settings) -> Row:
    """Row d: seconds per image of ``deep`` / ``gradient`` and the forward+backward passes of
    the same rows (deep: image and background, 2 B rows; gradient: nsamples rows in batches
    of 50)."""
    x = images(SPEC.shape, settings.explain_images)
    background = images(SPEC.shape, DEEP_BACKGROUND + settings.explain_images)[-DEEP_BACKGROUND:]
    idx = top1(h.backend, x)
    if method == "deep":
        params: dict[str, Any] = {}
        chunks = [2 * DEEP_BACKGROUND]
    else:
        params = {"nsamples": settings.gradient_samples}
        chunks = [min(50, settings.gradient_samples - i)
                  for i in range(0, settings.gradient_samples, 50)]
    rows = [images(SPEC.shape, n) for n in chunks]

    def bound() -> None:
        for _ in range(len(x)):
            for r in rows:
                h.forward_backward(r)

    t = interleaved_medians({
        "explainer": lambda: h.backend.native_explain(method, x, idx, background=background,
                                                      **params),
        "bound": bound}, settings.repeats)
    per_image = t["explainer"] / len(x)
    return Row("d", f"{h.framework}: {method} {per_image * 1e3:.1f} ms/image ÷ forward+backward "
                    f"of {sum(chunks)} rows/image", f"{t['explainer'] / t['bound']:.2f}")


# --- e: peak memory -----------------------------------------------------------------------------
def memory_probe(explainer: str, side: int, channels: int, patch: int | None
                 ) -> dict[str, Any]:
    """In this (fresh) process: explain one image (over ``patch`` x ``patch`` superpixels
    unless None) and report the peak resident memory, after the framework and model are
    loaded, after ``predict`` on one explainer batch (the model's own share), and at the end.
    The seconds include shap's first (numba) compilation: row f times warm explainers."""
    from benchmarks._frameworks import torch_harness

    shape = (side, side, channels)
    h = torch_harness(image_spec(shape))
    x = images(shape, 1)
    idx = top1(h.backend, x)
    before = peak_rss_mb()
    h.backend.predict(np.repeat(x, EXPLAINER_BATCH, axis=0))
    predict = peak_rss_mb()
    start = time.perf_counter()
    try:
        EXPLAINERS[explainer](h.backend, x, idx, "blur(8,8)", patch=patch)
    except ConfigError as exc:
        return {"refused": str(exc)}
    return {"peak_mb": peak_rss_mb(), "before_mb": before, "predict_mb": predict,
            "seconds": time.perf_counter() - start}


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB: Linux's VmHWM, which starts afresh at exec
    (``ru_maxrss`` keeps the high-water mark of the forked parent), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_row(explainer: str, shape: tuple[int, int, int], patch: int | None = None) -> Row:
    """Row e: runs :func:`memory_probe` in a subprocess (its max RSS is this explanation's)."""
    side, _, channels = shape
    out = subprocess.run([sys.executable, "-m", "benchmarks", "--memory-probe", explainer,
                          str(side), str(channels), str(patch or 0)], capture_output=True,
                         text=True, cwd=ROOT, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    what = f"torch: {explainer}{grouping(shape, patch)} + blur(8,8), one " \
           f"{'x'.join(map(str, shape))} image, peak RSS"
    goal = f"< {MEMORY_LIMIT_MB / 1024:g} GB" if shape == (224, 224, 3) else ""
    if "refused" in result:  # over pixel-channels the grouped row carries the goal
        if patch is None:
            return Row("e", what, f"refused: {result['refused']}")
        return Row("e", what, f"refused: {result['refused']}", goal, False if goal else None)
    peak = result["peak_mb"]
    return Row("e", f"{what} (framework and model alone: {result['before_mb']:.0f} MB; after "
                    f"predict on one batch of {EXPLAINER_BATCH}: {result['predict_mb']:.0f} MB; "
                    f"{result['seconds']:.1f} s)", f"{peak:.0f} MB", goal,
               (peak < MEMORY_LIMIT_MB) if goal else None)


def grouping(shape: tuple[int, int, int], patch: int | None) -> str:
    """", patch = 8 (784 features)" for a grouped row, "" for one over pixel-channels."""
    if patch is None:
        return ""
    return f", patch = {patch} ({n_features(shape, patch)} features)"


# --- f: seconds per image by size ---------------------------------------------------------------
def size_rows(settings: Settings) -> list[Row]:
    """Row f: seconds per image of every explainer (torch fmnist_cnn) at each of SHAPES, and
    of partition and permutation over GROUPING_PATCH superpixels (each explainer runs once
    untimed first, at the smallest shape)."""
    from benchmarks._frameworks import torch_harness

    per_image: dict[str, list[str]] = {}
    for shape in SHAPES:
        h = torch_harness(image_spec(shape))
        n = 1 if shape == (224, 224, 3) else settings.explain_images
        x = images(shape, n)
        background = images(shape, DEEP_BACKGROUND + n)[-DEEP_BACKGROUND:]
        idx = top1(h.backend, x)
        runs: dict[str, Callable[[], object]] = {
            "partition": lambda: EXPLAINERS["partition"](h.backend, x, idx, "blur(8,8)"),
            "permutation": lambda: EXPLAINERS["permutation"](h.backend, x, idx, "blur(8,8)"),
            **{f"{name}, patch = {GROUPING_PATCH}": functools.partial(
                EXPLAINERS[name], h.backend, x, idx, "blur(8,8)", patch=GROUPING_PATCH)
               for name in EXPLAINERS},
            "deep": lambda: h.backend.native_explain("deep", x, idx, background=background),
            "gradient": lambda: h.backend.native_explain(
                "gradient", x, idx, background=background, nsamples=settings.gradient_samples)}
        for name, fn in runs.items():
            if shape == SHAPES[0]:  # untimed: compiles numba code and warms the framework up
                try:
                    fn()
                except ConfigError:
                    pass
            start = time.perf_counter()
            try:
                fn()
            except ConfigError:
                per_image.setdefault(name, []).append("refused")
                continue
            per_image.setdefault(name, []).append(f"{(time.perf_counter() - start) / n:.3g}")
    labels = " / ".join("x".join(map(str, s)) for s in SHAPES)
    return [Row("f", f"torch: {name} s/image at {labels}", " / ".join(values))
            for name, values in per_image.items()]


# --- g: batched deletion ------------------------------------------------------------------------
def deletion_row(h: Harness, settings: Settings) -> Row:
    """Row g: per-step ``predict`` loop ÷ the batched deletion curve (the same score-space
    curves), beside its ceiling: the loop ÷ the curve's own ``predict`` calls alone (no
    batched curve can beat the loop by more than the model gains from batching)."""
    x = images(SPEC.shape, settings.deletion_images)
    attribution = h.backend.explain("random", x, 1, seed=0)
    steps = 20

    def batched(backend: Backend = h.backend) -> np.ndarray:
        return perturbation_curves(backend, x, attribution, kinds=("deletion",), steps=steps,
                                   replacement="blur", space="score")["deletion"]

    recording = RecordingBackend(h.backend)
    loop = loop_deletion_curves(h.backend, x, attribution, steps, "blur")
    np.testing.assert_allclose(batched(recording), loop, rtol=1e-4, atol=1e-5)
    t = interleaved_medians({
        "batched": batched,
        "loop": lambda: loop_deletion_curves(h.backend, x, attribution, steps, "blur"),
        "its predict": lambda: [h.backend.predict(b) for b in recording.batches]},
        settings.repeats, warmup=0)
    ratio = t["loop"] / t["batched"]
    return Row("g", f"{h.framework}: per-step loop ÷ batched deletion curve, "
                    f"{len(x)} images x {steps + 1} steps (ceiling: loop ÷ the curve's "
                    f"predict calls alone {t['loop'] / t['its predict']:.1f}x)",
               f"{ratio:.1f}x", ">= 5x", ratio >= 5)


# --- the table ----------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> str:
    names = ("numpy", "shap", "opencv-python-headless", "torch", "tensorflow", "jax", "flax")
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def markdown(rows: list[Row], header: list[str]) -> str:
    lines = ["# Benchmarks", "", *header, "",
             "| item | what | measured | goal | |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row.cells()) + " |"
              for row in rows]
    return "\n".join(lines) + "\n\n" + NOTES.read_text()


def run_suite(frameworks: list[str], settings: Settings, quick: bool, sections: str,
              threads: int) -> tuple[list[Row], list[str]]:
    load_before = os.getloadavg()
    started = time.perf_counter()
    harnesses = [HARNESSES[f](SPEC) for f in frameworks]
    torch_h = next(h for h in harnesses if h.framework == "torch")
    rows: list[Row] = []

    def add(new: list[Row]) -> None:
        for row in new:
            print(" | ".join(row.cells()), flush=True)
        rows.extend(new)

    sizes = shap_batch_sizes(torch_h)
    for h in harnesses:
        if "a" in sections:
            add(predict_rows(h, settings))
        if "b" in sections:
            add([tutorial_row(h, sizes, settings)])
    if "c" in sections:
        for explainer in EXPLAINERS:
            for masker in MASKERS:
                add([bound_row(torch_h, explainer, masker, settings)])
    if "d" in sections:
        for h in harnesses:
            add([native_row(h, method, settings) for method in ("deep", "gradient")])
    if "e" in sections:
        add([memory_row(e, s, patch) for e in EXPLAINERS for patch in (None, GROUPING_PATCH)
             for s in MEMORY_SHAPES])
    if "f" in sections:
        add(size_rows(settings))
    if "g" in sections:
        add([deletion_row(torch_h, settings)])
    load_after = os.getloadavg()
    command = "python -m benchmarks" + (" --quick" if quick else "") + \
        ("" if frameworks == list(HARNESSES) else f" --frameworks {','.join(frameworks)}") + \
        ("" if threads == 1 else f" --threads {threads}") + \
        ("" if sections == ALL_SECTIONS else f" --sections {sections}")
    header = [
        f"Reproduce: `{command}` (or `make bench`); {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{time.perf_counter() - started:.0f} s.",
        "",
        f"- machine: {os.cpu_count()} cores, {cpu_model()}; load average (1 min) "
        f"{load_before[0]:.2f} at the start, {load_after[0]:.2f} at the end (a shared machine: "
        "every ratio is measured side by side, interleaved, medians of "
        f"{settings.repeats} repeats)",
        f"- threads: {threads or DEFAULT_THREADS} intra-op per framework (`--threads`)",
        f"- libraries: Python {platform.python_version()}, {versions()}",
        f"- model: the zoo `fmnist_cnn` (untrained weights, seed 0), 28x28x1 unless stated; "
        f"backend batch size {torch_h.backend.batch_size}",
        f"- explainers: partition max_evals={PARTITION_EVALS}, permutation one antithetic "
        f"permutation (2M+1 evals), batch_size={EXPLAINER_BATCH}; deep with "
        f"{DEEP_BACKGROUND} background images; gradient nsamples={settings.gradient_samples}; "
        f"{settings.explain_images} images per timing",
        f"- shap's partition batch-size pattern (row b): {sizes}",
    ]
    return rows, header


def limit_threads(n: int) -> None:
    """Give torch, TensorFlow and XLA ``n`` intra-op threads (before any of them is imported;
    the memory-probe subprocesses inherit it)."""
    os.environ.update({"OMP_NUM_THREADS": str(n), "TF_NUM_INTRAOP_THREADS": str(n),
                       "TF_NUM_INTEROP_THREADS": str(n),
                       "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen={'true' if n > 1 else 'false'}"
                                    f" intra_op_parallelism_threads={n}"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few minutes on 2 cores")
    parser.add_argument("--frameworks", default=",".join(HARNESSES),
                        help="comma-separated subset of torch,keras,flax (torch is required)")
    parser.add_argument("--sections", default=ALL_SECTIONS, help="rows to run, e.g. 'ac'")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads of every framework (0: the frameworks' default); "
                             "1 keeps timings steady on a shared machine")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--memory-probe", nargs=4,
                        metavar=("EXPLAINER", "SIDE", "CHANNELS", "PATCH"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        limit_threads(args.threads)
    if args.memory_probe:
        explainer, side, channels, patch = args.memory_probe
        print(json.dumps(memory_probe(explainer, int(side), int(channels), int(patch) or None)))
        return
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    unknown = sorted(set(frameworks) - set(HARNESSES))
    if unknown or "torch" not in frameworks:
        parser.error(f"--frameworks takes a subset of {','.join(HARNESSES)} that includes "
                     f"torch; got {args.frameworks!r}")
    rows, header = run_suite(frameworks, Settings.of(args.quick), args.quick, args.sections,
                             args.threads)
    text = markdown(rows, header)
    args.output.write_text(text)
    print(f"\n{text}\nwritten to {args.output}")


if __name__ == "__main__":
    main()
