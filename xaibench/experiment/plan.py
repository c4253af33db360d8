"""The experiment grid: dataset × models × explainers × maskers, expanded into keyed cells.

A key is a hash of everything that determines a result, so the same experiment gives the same
keys on every run (resume), and changing anything that matters gives new ones:

- a model's key hashes backend, architecture, dataset (name, loader params, n_train),
  training params and the run seed — it also keys the checkpoint cache;
- a cell's key hashes its model's key, the image selection, the explainer, masker, targets,
  params, metrics (with their params) and the run seed (and ``n_background`` for explainers
  that take a background). Random choices inside a cell use a seed derived from its key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from xaibench.errors import ConfigError
from xaibench.experiment.config import ExperimentConfig, explainer_parameters


def stable_hash(obj: Any) -> str:
    """16 hex digits of the SHA-256 of ``obj``'s canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def derive_seed(key: str) -> int:
    """A 32-bit seed derived from a (hex) key."""
    return int(key[:8], 16)


@dataclass(frozen=True)
class ModelPlan:
    """A model to obtain (train or load): everything its key hashes."""

    key: str
    backend: str
    architecture: str
    dataset: str
    dataset_params: dict[str, Any]
    n_train: int | None
    train: dict[str, Any]
    seed: int

    @property
    def label(self) -> str:
        return f"{self.backend}:{self.architecture}"


@dataclass(frozen=True)
class Cell:
    """One explainer × masker run on one model's selected test images."""

    key: str
    model: ModelPlan
    explainer: str
    masker: str | None
    targets: int
    #: the explainer's keyword params from the config, plus ``seed`` (derived from the key)
    #: when the explainer takes one the config does not set
    params: dict[str, Any]
    #: the seed derived from the key
    seed: int

    @property
    def label(self) -> str:
        return f"{self.explainer}/{self.masker or '-'}/{self.model.label}"


@dataclass(frozen=True)
class Plan:
    """Models (in config order) and their cells (grouped by model, in config order)."""

    models: tuple[ModelPlan, ...]
    cells: tuple[Cell, ...]

    def cells_of(self, model: ModelPlan) -> list[Cell]:
        return [cell for cell in self.cells if cell.model.key == model.key]


def make_plan(config: ExperimentConfig) -> Plan:
    """Expand ``config`` into models and cells; ConfigError if two entries are the same."""
    data = config.dataset
    models: list[ModelPlan] = []
    for number, model in enumerate(config.models, 1):
        identity = {"backend": model.backend, "architecture": model.architecture,
                    "dataset": data.name, "dataset_params": data.params,
                    "n_train": data.n_train, "train": model.train, "seed": config.seed}
        plan = ModelPlan(key=stable_hash(identity), **identity)
        twin = next((i for i, m in enumerate(models, 1) if m.key == plan.key), None)
        if twin is not None:
            raise ConfigError(f"[[models]] #{twin} and #{number} are the same model "
                              f"({plan.label})")
        models.append(plan)

    cells: dict[str, Cell] = {}
    for model in models:
        for number, explainer in enumerate(config.explainers, 1):
            parameters = explainer_parameters(explainer.name)
            for masker in explainer.maskers or (None,):
                identity = {"model": model.key, "images": asdict(config.images),
                            "explainer": explainer.name, "masker": masker,
                            "targets": explainer.targets, "params": explainer.params,
                            "metrics": {name: config.metric_params.get(name, {})
                                        for name in config.metrics},
                            "seed": config.seed}
                if "background" in parameters:
                    identity["n_background"] = data.n_background
                key = stable_hash(identity)
                params = dict(explainer.params)
                if "seed" in parameters and "seed" not in params:
                    params["seed"] = derive_seed(key)
                cell = Cell(key=key, model=model, explainer=explainer.name, masker=masker,
                            targets=explainer.targets, params=params, seed=derive_seed(key))
                if key in cells:
                    raise ConfigError(f"[[explainers]] #{number} repeats the cell {cell.label}")
                cells[key] = cell
    return Plan(models=tuple(models), cells=tuple(cells.values()))
