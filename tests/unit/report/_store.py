"""A results store filled with synthetic but realistic records, built with the real Store API."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xaibench.experiment.store import CellRecord, MetricRow, ModelRecord, Store

DATASET = "digits"
CLASS_NAMES = ["zero", "one", "two"]
N_IMAGES, K, STEPS = 4, 2, 10
LAYERS = ["fc2", "fc1", "conv2", "conv1"]  # MPRT order: output layer first
#: (explainer, masker, params)
CONFIGS = [("deep", None, {"background": 16}),
           ("partition", "blur(3,3)", {"max_evals": 200}),
           ("permutation", "inpaint_telea", {"max_evals": 129})]
BACKENDS = {"torch": 0.90, "keras": 0.85}  # backend -> model accuracy
#: per configuration: mean ABPC (higher is better) and deletion AUC (lower); keras adds 0.01
ABPC, DELETION = (0.3, 0.5, 0.4), (0.2, 0.1, 0.3)
ERROR = "Traceback (most recent call last):\n  ...\nValueError: max_evals=129 is too small"
META = {"name": "report-test", "config": '[experiment]\nname = "report-test"\n',
        "versions": {"python": "3.11.7", "shap": "0.51.0", "torch": "2.13.0"},
        "platform": "Linux-6.1-x86_64", "started_at": 1_700_000_000.0,
        "duration_seconds": 73.25, "status": "finished"}


@dataclass(frozen=True)
class Cell:
    """What was written for one cell (the expected numbers of the report)."""

    key: str
    backend: str
    explainer: str
    masker: str | None
    wall_seconds: float
    model_evals: int
    gaps: np.ndarray = field(repr=False)  # (N, K) additivity gaps built into the arrays
    abpc: float
    deletion_auc: float


def cell_arrays(gaps: np.ndarray, shape: tuple[int, int, int], seed: int) -> dict[str, np.ndarray]:
    """Arrays of a cell whose additivity gap |Σφ − (f(x) − base)| is exactly ``gaps``; the
    images, labels and predictions are the same in every cell, the values depend on ``seed``."""
    rng, data = np.random.default_rng(seed), np.random.default_rng(0)
    n, k = gaps.shape
    values = rng.normal(0, 0.05, (n, *shape, k)).astype(np.float32)
    values[:, :shape[0] // 2, ..., 0] += 0.02  # top half pushes the top-1 output up (red)
    values[:, shape[0] // 2:, ..., 0] -= 0.02  # bottom half pushes it down (blue)
    base = rng.uniform(0, 0.2, (n, k))
    outputs = base + values.reshape(n, -1, k).sum(axis=1, dtype=np.float64) + gaps
    labels = data.integers(0, len(CLASS_NAMES), n)
    predictions = np.where(np.arange(n) == 0, (labels + 1) % len(CLASS_NAMES), labels)
    output_indices = (predictions[:, None] + np.arange(k)) % len(CLASS_NAMES)
    return {"values": values, "output_indices": output_indices,
            "base_values": base, "model_outputs": outputs,
            "images": data.uniform(0, 1, (n, *shape)).astype(np.float32), "labels": labels,
            "predictions": predictions, "image_ids": np.arange(100, 100 + n)}


def extra_arrays(arrays: dict[str, np.ndarray], quality: float,
                 seed: int) -> dict[str, np.ndarray]:
    """Raw deletion / insertion curves and MPRT similarities; a higher ``quality`` (0..1) gives
    a faster falling deletion, faster rising insertion and lower MPRT similarity."""
    rng = np.random.default_rng(seed)
    f_x = arrays["model_outputs"][..., None]
    f_empty = f_x - rng.uniform(1.0, 3.0, f_x.shape)
    t = np.linspace(0, 1, STEPS + 1)
    power = 1 + 4 * quality * rng.uniform(0.8, 1.2, f_x.shape)
    similarity = 1 - quality * np.linspace(0.2, 1, len(LAYERS)) \
        + rng.normal(0, 0.05, (*f_x.shape[:2], len(LAYERS)))
    return {"deletion_curve": f_empty + (f_x - f_empty) * (1 - t) ** power,
            "insertion_curve": f_empty + (f_x - f_empty) * (1 - (1 - t) ** power),
            "mprt_curve": similarity, "mprt_layers": np.array(LAYERS)}


def model_record(backend: str, dataset: str = DATASET, accuracy: float = 0.9,
                 train_params: dict | None = None) -> ModelRecord:
    return ModelRecord(f"{backend}-{dataset}", backend, "fmnist_cnn", dataset,
                       train_params or {"epochs": 1}, 0, accuracy, 12.5,
                       {"confusion_matrix": [[1, 0], [0, 1]]})


def cell_record(backend: str, explainer: str, masker: str | None, params: dict,
                dataset: str = DATASET, wall_seconds: float = 0.0,
                model_evals: int = 0) -> CellRecord:
    return CellRecord(f"{dataset}-{backend}-{explainer}", dataset, backend, "fmnist_cnn",
                      f"{backend}-{dataset}", explainer, masker, params, 0, N_IMAGES,
                      wall_seconds, model_evals)


def metric_rows(gaps: np.ndarray, abpc: float, deletion: float,
                seconds: float) -> list[MetricRow]:
    """Rows of additivity (the gaps), abpc and deletion_auc (per-image spread around the given
    means, the same for each output) and the cost metric seconds_per_image."""
    spread = np.linspace(-0.03, 0.03, N_IMAGES)[:, None] + np.zeros(K)
    per_image = {("additivity", False, "fidelity"): gaps,
                 ("abpc", True, "faithfulness"): abpc + spread,
                 ("deletion_auc", False, "faithfulness"): deletion + spread,
                 ("seconds_per_image", False, "cost"): np.full((N_IMAGES, K), seconds)}
    return [MetricRow(name, i, k, values[i, k], higher, category)
            for (name, higher, category), values in per_image.items()
            for i in range(N_IMAGES) for k in range(K)]


def build_store(root: Path, *, failed: set[tuple[str, str]] = frozenset(),
                without_metrics: set[tuple[str, str]] = frozenset(),
                shape: tuple[int, int, int] = (8, 8, 1), extras: bool = True) -> list[Cell]:
    """Fill ``root`` with 2 backends x 3 configurations; (backend, explainer) pairs in
    ``failed`` fail, those in ``without_metrics`` are stored without metric rows; ``extras``:
    store perturbation curves and MPRT similarities."""
    store = Store(root)
    store.set_meta("class_names", {DATASET: CLASS_NAMES})
    for key, value in META.items():
        store.set_meta(key, value)
    cells = []
    for b, (backend, accuracy) in enumerate(BACKENDS.items()):
        store.put_model(model_record(backend, accuracy=accuracy))
        for e, (explainer, masker, params) in enumerate(CONFIGS):
            wall, evals = 0.8 * (b + 1) * (e + 1), 10 ** (e + 1) + b
            record = cell_record(backend, explainer, masker, params, wall_seconds=wall,
                                 model_evals=evals)
            if (backend, explainer) in failed:
                store.put_failure(record, ERROR)
                continue
            gaps = np.random.default_rng(10 * b + e).uniform(0, 10.0 ** -(e + b), (N_IMAGES, K))
            abpc, deletion = ABPC[e] + 0.01 * b, DELETION[e] + 0.01 * b
            rows = [] if (backend, explainer) in without_metrics else \
                metric_rows(gaps, abpc, deletion, wall / N_IMAGES)
            arrays = cell_arrays(gaps, shape, seed=10 * b + e)
            if extras:
                arrays |= extra_arrays(arrays, quality=abpc, seed=10 * b + e)
            store.put_cell(record, arrays, rows)
            cells.append(Cell(record.cell_key, backend, explainer, masker, wall, evals, gaps,
                              abpc, deletion))
    return cells
