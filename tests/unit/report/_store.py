"""A results store filled with synthetic but realistic records, built with the real Store API."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xaibench.experiment.store import CellRecord, MetricRow, ModelRecord, Store

DATASET = "digits"
CLASS_NAMES = ["zero", "one", "two"]
N_IMAGES, K = 4, 2
#: (explainer, masker, params)
CONFIGS = [("deep", None, {"background": 16}),
           ("partition", "blur(3,3)", {"max_evals": 200}),
           ("permutation", "inpaint_telea", {"max_evals": 129})]
BACKENDS = {"torch": 0.90, "keras": 0.85}  # backend -> model accuracy
ERROR = "Traceback (most recent call last):\n  ...\nValueError: max_evals=129 is too small"


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


def cell_arrays(gaps: np.ndarray, shape: tuple[int, int, int], seed: int) -> dict[str, np.ndarray]:
    """Arrays of a cell whose additivity gap |Σφ − (f(x) − base)| is exactly ``gaps``."""
    rng = np.random.default_rng(seed)
    n, k = gaps.shape
    values = rng.normal(0, 0.05, (n, *shape, k)).astype(np.float32)
    values[:, :shape[0] // 2, ..., 0] += 0.02  # top half pushes the top-1 output up (red)
    values[:, shape[0] // 2:, ..., 0] -= 0.02  # bottom half pushes it down (blue)
    base = rng.uniform(0, 0.2, (n, k))
    outputs = base + values.reshape(n, -1, k).sum(axis=1, dtype=np.float64) + gaps
    labels = rng.integers(0, len(CLASS_NAMES), n)
    predictions = np.where(np.arange(n) == 0, (labels + 1) % len(CLASS_NAMES), labels)
    output_indices = (predictions[:, None] + np.arange(k)) % len(CLASS_NAMES)
    return {"values": values, "output_indices": output_indices,
            "base_values": base, "model_outputs": outputs,
            "images": rng.uniform(0, 1, (n, *shape)).astype(np.float32), "labels": labels,
            "predictions": predictions,
            "image_ids": np.arange(100, 100 + n)}


def model_record(backend: str, dataset: str = DATASET, accuracy: float = 0.9) -> ModelRecord:
    return ModelRecord(f"{backend}-{dataset}", backend, "fmnist_cnn", dataset, {"epochs": 1}, 0,
                       accuracy, 12.5, {"confusion_matrix": [[1, 0], [0, 1]]})


def cell_record(backend: str, explainer: str, masker: str | None, params: dict,
                dataset: str = DATASET, wall_seconds: float = 0.0,
                model_evals: int = 0) -> CellRecord:
    return CellRecord(f"{dataset}-{backend}-{explainer}", dataset, backend, "fmnist_cnn",
                      f"{backend}-{dataset}", explainer, masker, params, 0, N_IMAGES,
                      wall_seconds, model_evals)


def build_store(root: Path, *, failed: set[tuple[str, str]] = frozenset(),
                without_metrics: set[tuple[str, str]] = frozenset(),
                shape: tuple[int, int, int] = (8, 8, 1)) -> list[Cell]:
    """Fill ``root`` with 2 backends x 3 configurations; (backend, explainer) pairs in
    ``failed`` fail, those in ``without_metrics`` are stored without metric rows."""
    store = Store(root)
    store.set_meta("class_names", {DATASET: CLASS_NAMES})
    store.set_meta("config", '[experiment]\nname = "report-test"\n')
    store.set_meta("environment",
                   {"python": "3.11.7", "packages": {"shap": "0.51.0", "numpy": "2.4"}})
    store.set_meta("runs", [{"started": 1_700_000_000.0, "seconds": 73.25, "status": "finished"}])
    store.set_meta("started_at", 1_700_000_000.0)
    cells = []
    for b, (backend, accuracy) in enumerate(BACKENDS.items()):
        store.put_model(model_record(backend, accuracy=accuracy))
        for e, (explainer, masker, params) in enumerate(CONFIGS):
            wall, evals = 0.8 * (b + 1) * (e + 1), 100 * (e + 1) + b
            record = cell_record(backend, explainer, masker, params, wall_seconds=wall,
                                 model_evals=evals)
            if (backend, explainer) in failed:
                store.put_failure(record, ERROR)
                continue
            gaps = np.random.default_rng(10 * b + e).uniform(0, 10.0 ** -(e + b), (N_IMAGES, K))
            rows = [] if (backend, explainer) in without_metrics else [
                MetricRow("additivity", i, k, gaps[i, k], False, "fidelity")
                for i in range(N_IMAGES) for k in range(K)]
            store.put_cell(record, cell_arrays(gaps, shape, seed=10 * b + e), rows)
            cells.append(Cell(record.cell_key, backend, explainer, masker, wall, evals, gaps))
    return cells
