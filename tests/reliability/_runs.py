"""A fast experiment for the run tests: digits, a torch MLP, three cells of the noise baseline.

The model trains in a second and is cached in a checkpoint folder shared by the tests of a
module; the noise explainer needs neither shap nor a background, so a run takes well under a
second once torch is imported.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from xaibench.experiment import runner
from xaibench.experiment.config import ExperimentConfig, parse_config
from xaibench.experiment.plan import data_fingerprint, make_plan
from xaibench.experiment.store import Store

FAST_TOML = """
name = "fast"
seed = 1
metrics = ["additivity"]

[dataset]
name = "digits"
n_train = 200
n_background = 5

[images]
first = 2

[[models]]
backend = "torch"
architecture = "mlp"
train = { epochs = 1, batch_size = 32, lr = 1e-2 }

[[explainers]]
name = "random"
targets = 1

[[explainers]]
name = "random"
targets = 2

[[explainers]]
name = "random"
targets = 3
"""
N_CELLS, N_IMAGES = 3, 2


def fast_config(text: str = FAST_TOML) -> ExperimentConfig:
    return parse_config(text)


def run(config: ExperimentConfig, out: Path, cache: Path, **kwargs) -> runner.RunSummary:
    return runner.run(config, out, progress=False, cache_dir=cache, **kwargs)


def planned_keys(config: ExperimentConfig) -> set[str]:
    """The cell keys of a run of ``config`` (planned with its data's fingerprint)."""
    dataset = runner.load_dataset(config)
    plan = make_plan(config, data_fingerprint(dataset, config.dataset.n_train))
    return {cell.key for cell in plan.cells}


def assert_every_cell_once(config: ExperimentConfig, out: Path) -> None:
    """The store holds each planned cell exactly once, done, with its metric rows and arrays,
    and nothing else."""
    store = Store(out)
    cells, metrics = store.frame("cells"), store.frame("metrics")
    keys = planned_keys(config)
    assert sorted(cells["cell_key"]) == sorted(keys)
    assert (cells["status"] == "done").all()
    rows = metrics.groupby("cell_key").size()
    assert {cell.cell_key: N_IMAGES * cell.params["targets"] for cell in cells.itertuples()} \
        == rows.to_dict()
    assert {path.stem for path in (out / "arrays").glob("*.npz")} == keys
    for key in keys:
        store.load_arrays(key)  # verified against its hash


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` made read-only for the block: by its mode, and for root, which ignores the
    mode, by the immutable attribute; pytest.skip where neither works."""
    folder.chmod(0o555)
    immutable = os.access(folder, os.W_OK) and subprocess.run(
        ["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    try:
        if os.access(folder, os.W_OK) and not immutable:
            pytest.skip("cannot make a directory read-only here")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)
