"""Determinism: the same config and seed give bit-identical stored results in two fresh runs.

Per framework, a small experiment (digits, fmnist_cnn trained one epoch, two test images;
deep, gradient, partition, permutation and random; abpc, deletion_auc, mprt and gini) runs
twice in this process into two fresh results directories *and* two fresh checkpoint caches,
so the model is trained twice. Then

- every array stored for every cell (``arrays/<key>.npz``: values, base values, curves, ...)
  has the same names, dtypes, shapes and bytes, and the stored metric values are equal;
- the CSV report (``report.csv`` and ``tables/*.csv``) is byte-identical, except for the
  wall-clock measurements in :data:`WALL_CLOCK_COLUMNS`, which are left out of the
  comparison, and the row order of :data:`ORDERED_BY_WALL_CLOCK`.

Equality across thread counts is *not* asserted: float reductions may legitimately split
differently (torch trains a different model with ``OMP_NUM_THREADS=1``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xaibench.experiment.config import parse_config
from xaibench.experiment.runner import run
from xaibench.experiment.store import Store
from xaibench.report import render

#: the importable package each backend needs
FRAMEWORKS = {"torch": "torch", "keras": "tensorflow", "flax": "flax"}

#: CSV columns that measure wall-clock time, and so differ between any two runs:
#: explaining seconds per image (report.csv, tables/runtime.csv), model evaluations per second
#: derived from it (tables/runtime.csv) and training seconds (tables/models.csv)
WALL_CLOCK_COLUMNS = frozenset({"seconds_per_image", "evals_per_second", "train_seconds"})
#: CSV files whose rows are sorted by a wall-clock column (runtime: fastest first); their rows
#: are compared as sorted lists
ORDERED_BY_WALL_CLOCK = frozenset({"tables/runtime.csv"})

CONFIG = """
name = "determinism"
seed = 5
metrics = ["abpc", "deletion_auc", "mprt", "gini"]

[dataset]
name = "digits"
params = {{ n_test = 100 }}
n_train = 300
n_background = 5

[images]
first = 2

[[models]]
backend = "{backend}"
architecture = "fmnist_cnn"
train = {{ epochs = 1, batch_size = 32, lr = 1e-2 }}

[[explainers]]
name = "deep"

[[explainers]]
name = "gradient"
params = {{ nsamples = 20 }}

[[explainers]]
name = "partition"
maskers = ["blur(3,3)"]
params = {{ max_evals = 40 }}

[[explainers]]
name = "permutation"
maskers = ["blur(3,3)"]    # 8x8 images: one permutation is 2 * 64 + 1 = 129 evaluations

[[explainers]]
name = "random"
"""


@pytest.mark.parametrize("backend", sorted(FRAMEWORKS))
def test_two_fresh_runs_store_and_report_bit_identical_results(backend, tmp_path):
    pytest.importorskip(FRAMEWORKS[backend])
    config = parse_config(CONFIG.format(backend=backend))
    runs = [tmp_path / "run_a", tmp_path / "run_b"]
    for out in runs:
        summary = run(config, out / "results", progress=False, cache_dir=out / "checkpoints")
        assert (summary.n_finished, summary.failures) == (5, ()), summary
        render(out / "results", formats=["csv"])
    first, second = (Store(out / "results") for out in runs)

    assert first.done_keys() == second.done_keys()
    for key in sorted(first.done_keys()):
        _assert_bit_identical(first.load_arrays(key), second.load_arrays(key), cell=key)
    pd.testing.assert_frame_equal(_metrics(first), _metrics(second), check_exact=True)

    csv_files = _csv_files(first.root)
    assert csv_files == _csv_files(second.root) and "report.csv" in csv_files
    for name in sorted(csv_files):
        assert _csv_without_wall_clock(first.root, name) == \
            _csv_without_wall_clock(second.root, name), name


def _assert_bit_identical(first: dict[str, np.ndarray], second: dict[str, np.ndarray], *,
                          cell: str) -> None:
    assert sorted(first) == sorted(second), cell
    for name, array in first.items():
        other = second[name]
        assert (array.dtype, array.shape) == (other.dtype, other.shape), (cell, name)
        if array.tobytes() != other.tobytes():
            gap = np.abs(array.astype(np.float64) - other.astype(np.float64)).max()
            pytest.fail(f"cell {cell}: array '{name}' differs between the runs "
                        f"(max |difference| {gap:.3g})")


def _metrics(store: Store) -> pd.DataFrame:
    return store.frame("metrics").sort_values(["cell_key", "metric", "image", "output"],
                                              ignore_index=True)


def _csv_files(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*.csv")}


def _csv_without_wall_clock(root: Path, name: str) -> list[list[str]] | bytes:
    """The file's bytes; for a file with wall-clock columns, its rows without them."""
    path = root / name
    with path.open(newline="", encoding="utf-8") as file:
        header, *rows = csv.reader(file)
    kept = [i for i, column in enumerate(header) if column not in WALL_CLOCK_COLUMNS]
    if len(kept) == len(header):
        return path.read_bytes()
    rows = [[row[i] for i in kept] for row in rows]
    return [[header[i] for i in kept], *(sorted(rows) if name in ORDERED_BY_WALL_CLOCK
                                         else rows)]
