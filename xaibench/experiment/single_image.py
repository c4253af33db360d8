"""Explain one user image file with a model of a finished run (``xaibench explain IMAGE``).

The run's stored resolved configuration is read back, its explainers replaced by the one asked
for, and validated like an experiment file (registry names with did-you-mean, masker specs,
params and their minimums). The model is the run's: a zoo model from its cached checkpoint
(never trained here), a user's model from its files, a copy from its source's checkpoint.
Native explainers get the run's background images (same seed, same draw).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xaibench.backend import Attribution, Backend, ImageSpec
from xaibench.errors import ConfigError, DataError


@dataclass(frozen=True)
class ImageExplanation:
    """One image, the model's class probabilities and the explanation of its top-k classes."""

    image: np.ndarray  # (H, W, C) in [0, 1], as the model saw it
    probabilities: np.ndarray  # (n_classes,)
    class_names: tuple[str, ...]
    attribution: Attribution
    model_label: str

    def top_k(self) -> list[tuple[str, float]]:
        """(class name, probability) of the explained classes, best first."""
        return [(self.class_names[i], float(self.probabilities[i]))
                for i in self.attribution.output_indices[0]]


def read_image(path: str | Path, spec: ImageSpec) -> np.ndarray:
    """The image file ``path`` (PNG or JPEG, any size and mode) as a batch of one, resized and
    converted to the spec's shape and channels, values in [0, 1]; DataError if unreadable."""
    from PIL import UnidentifiedImageError

    from xaibench.data.image_folder import _read_image

    height, width, channels = spec.shape
    if channels not in (1, 3):
        raise ConfigError(f"the model takes {channels}-channel images; only grey (1) and RGB "
                          f"(3) models can explain an image file")
    try:
        image, _ = _read_image(Path(path), height, width, grayscale=channels == 1)
    except (OSError, ValueError, UnidentifiedImageError) as exc:
        raise DataError(f"cannot read image {path}: {exc}; give a PNG or JPEG file") from None
    return image[None]


def explain_image(image_path: str | Path, results_dir: str | Path, *, model: str | None = None,
                  explainer: str = "deep", masker: str | None = None,
                  params: dict[str, Any] | None = None, top_k: int = 3) -> ImageExplanation:
    """Explain the ``top_k`` classes of the image file with ``model`` (a model key or its
    prefix, "backend:architecture", or the architecture (a user model's name) when only one
    model has it; may be omitted when the run has one model)
    of the run in ``results_dir``, by ``explainer`` (with ``masker`` where it takes one)."""
    from xaibench.experiment.checkpoints import copy_model, obtain_model
    from xaibench.experiment.config import config_from_dict
    from xaibench.experiment.plan import data_fingerprint, make_plan
    from xaibench.experiment.runner import explain_params, load_dataset, select_background
    from xaibench.experiment.store import Store, require_store

    results_dir = Path(results_dir)
    require_store(results_dir)
    store = Store(results_dir)
    resolved = store.get_meta("resolved_config")
    if resolved is None:
        raise DataError(f"{results_dir} records no configuration (a run older than this "
                        f"command); run the experiment again with this version")
    explainers = [{"name": explainer, "targets": top_k, "params": params or {},
                   **({"maskers": [masker]} if masker else {})}]
    data, base_dir = _file_shaped(resolved)
    config = config_from_dict({**data, "name": store.get_meta("name", "explain"),
                               "explainers": explainers, "metrics": [], "metric_params": {}},
                              origin=f"the run in {results_dir}", base_dir=base_dir)
    dataset = load_dataset(config)
    plan = make_plan(config, data_fingerprint(dataset, config.dataset.n_train))
    chosen = _choose(plan.models, model, results_dir)
    x = read_image(image_path, dataset.spec)

    if chosen.user is None:
        source = plan.model(chosen.weights_from) if chosen.weights_from else chosen
        stored = dict(store.frame("models")[["model_key", "checkpoint"]].values).get(source.key)
        if not stored or not Path(stored).is_file():
            where = f"its checkpoint {stored} is gone" if stored else "it holds no such model"
            raise DataError(f"{results_dir} cannot give {source.label}: {where}; run the "
                            f"experiment again to train it")
        obtained = obtain_model(source, dataset, cache_dir=Path(stored).parents[1],
                                progress=False)
        if chosen.weights_from:
            obtained = copy_model(chosen, obtained, dataset)
    else:
        obtained = obtain_model(chosen, dataset, progress=False)
    backend: Backend = obtained.backend
    (cell,) = [c for c in plan.cells if c.model.key == chosen.key]
    attribution = backend.explain(cell.explainer, x, cell.targets,
                                  **explain_params(cell, select_background(config, dataset)))
    return ImageExplanation(x[0], probabilities(backend.predict(x)[0]),
                            backend.spec.class_names, attribution, chosen.label)


def _file_shaped(resolved: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A stored resolved configuration as an experiment file's dict (None values dropped,
    user models flattened), and the directory its user models' paths resolve against."""
    def present(table: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in table.items() if value is not None}

    models, base_dir = [], None
    for model in resolved["models"]:
        user = model.get("user")
        if user is None:
            models.append(present({k: v for k, v in model.items() if k != "user"}))
            continue
        base_dir = user["base_dir"]
        models.append(present({"backend": model["backend"], "name": model["architecture"],
                               "params": model["params"],
                               **{k: v for k, v in user.items() if k != "base_dir"}}))
    data = {key: value for key, value in resolved.items()
            if key not in ("data", "models", "explainers")}
    return {**data, "dataset": present(resolved["dataset"]), "models": models}, base_dir


def probabilities(scores: np.ndarray) -> np.ndarray:
    """Class probabilities: the scores themselves when they already are a distribution (a
    softmax output), else their softmax (logits)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.min() >= 0 and abs(scores.sum() - 1) < 1e-4:
        return scores
    shifted = np.exp(scores - scores.max())
    return shifted / shifted.sum()


def _choose(models: tuple, wanted: str | None, results_dir: Path) -> Any:
    """The run's model named ``wanted`` (see :func:`explain_image`); ConfigError naming the
    run's models otherwise."""
    from xaibench.registry import did_you_mean

    names = [f"{m.label} (key {m.key[:12]})" for m in models]
    if wanted is None:
        if len(models) == 1:
            return models[0]
        raise ConfigError(f"{results_dir} holds {len(models)} models; choose one with --model: "
                          + ", ".join(names))
    found = [m for m in models
             if wanted in (m.label, m.architecture) or m.key.startswith(wanted)]
    if len(found) != 1:
        problem = "no model" if not found else f"{len(found)} models"
        raise ConfigError(f"{results_dir} holds {problem} named '{wanted}'"
                          f"{did_you_mean(wanted, [m.label for m in models])}; its models: "
                          + ", ".join(names))
    return found[0]

