"""Trained models: build, train or load a verified cached checkpoint, evaluate on the test split.

Checkpoints live in ``<cache>/checkpoints/<model key>.ckpt`` with a JSON sidecar
``<model key>.json`` holding the key's fields, the checkpoint's SHA-256, the training time and
history. ``<cache>`` is ``$XAIBENCH_CACHE``, else ``$XDG_CACHE_HOME/xaibench``, else
``~/.cache/xaibench``. Both files are written atomically (temporary file + rename); a
checkpoint whose sidecar is missing, unreadable, for another key or with another hash is
never used: it is retrained (with a :class:`CheckpointWarning`) and overwritten; so is one
whose weights hold NaN/Inf. A cache that cannot be written costs only the caching: the trained
model is used, with a :class:`CheckpointWarning` naming the cache and the fix.

A user's own model is never trained nor cached: :func:`load_user_model` loads it with its
backend's ``from_user`` (which checks it on one batch) and evaluates it like a trained one.

A copied model (``weights_from``) is never trained nor cached: :func:`copy_model` builds it,
gives it its source's weights (``Backend.get_weights`` / ``set_weights``, framework-neutral
arrays) and checks that it reproduces the source's test scores.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from xaibench import registry
from xaibench.backend import Backend
from xaibench._files import replaced_atomically, sha256_file, write_atomic
from xaibench.data.base import Dataset
from xaibench.errors import XaibenchError
from xaibench.experiment.plan import ModelPlan
from xaibench.experiment.store import ModelRecord


#: a copied model's test scores may differ from its source's by at most this, relative to the
#: largest |score| (at least 1): float32 round-off of another framework's kernels
COPY_TOLERANCE = 1e-5


class CheckpointWarning(UserWarning):
    """A cached checkpoint could not be used and the model is trained again."""


@dataclass(frozen=True)
class ObtainedModel:
    """A ready model, its record for the store and its scores on the whole test split."""

    backend: Backend
    record: ModelRecord
    test_scores: np.ndarray
    from_cache: bool


def cache_root() -> Path:
    """``$XAIBENCH_CACHE``, else ``$XDG_CACHE_HOME/xaibench``, else ``~/.cache/xaibench``."""
    if os.environ.get("XAIBENCH_CACHE"):
        return Path(os.environ["XAIBENCH_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "xaibench"
    return Path.home() / ".cache" / "xaibench"


def checkpoint_path(model: ModelPlan, cache_dir: Path | None = None) -> Path:
    """Where the checkpoint of ``model`` is cached (its sidecar: same name, ``.json``)."""
    return (cache_dir or cache_root()) / "checkpoints" / f"{model.key}.ckpt"


def obtain_model(model: ModelPlan, dataset: Dataset, *, cache_dir: Path | None = None,
                 progress: bool = True) -> ObtainedModel:
    """Load ``model`` from the cache or build and train it (and cache it); evaluate it.

    ``progress`` shows training progress bars. When the cache cannot be written the trained
    model is still used (with a :class:`CheckpointWarning` naming the cache). A model whose
    training diverges raises :class:`~xaibench.errors.TrainingDivergedError`; one that
    outputs NaN/Inf on the test split raises :class:`XaibenchError`.
    """
    if model.user is not None:
        return load_user_model(model, dataset)
    path = checkpoint_path(model, cache_dir)
    x, y = dataset.x_train[:model.n_train], dataset.y_train[:model.n_train]
    cached = _load_cached(model, dataset, path)
    checkpoint: str | None = str(path)
    if cached is not None:
        backend, sidecar = cached
        train_seconds, history = sidecar["train_seconds"], sidecar["history"]
    else:
        backend = _build(model, dataset)
        start = time.perf_counter()
        history = backend.fit(x, y, **model.train, seed=model.seed, progress=progress)
        train_seconds = time.perf_counter() - start
        try:
            _save(backend, model, path, train_seconds, history)
        except OSError as exc:
            root = path.parent
            warnings.warn(f"cannot write the checkpoint cache {root} ({exc}); the trained model "
                          f"is used but not cached, so the next run trains it again: make "
                          f"{root} writable or set XAIBENCH_CACHE=<a writable directory>",
                          CheckpointWarning, stacklevel=2)
            checkpoint = None
    scores = backend.predict(dataset.x_test)
    evaluation = _evaluate(dataset, scores)
    record = ModelRecord(
        model_key=model.key, backend=model.backend, architecture=model.architecture,
        dataset=model.dataset, train_params={**model.train, "n_train": len(x)},
        seed=model.seed, accuracy=evaluation.get("accuracy", float("nan")),
        train_seconds=train_seconds,
        evaluation={**evaluation, "params": model.params, "history": history,
                    "from_cache": cached is not None},
        checkpoint=checkpoint)
    return ObtainedModel(backend, record, scores, from_cache=cached is not None)


def load_user_model(model: ModelPlan, dataset: Dataset) -> ObtainedModel:
    """A user's trained ``model`` loaded by its backend's ``from_user`` (checked on one batch,
    ConfigError otherwise) and evaluated on the test split; never trained (train_seconds 0).
    Its class names, when declared, name the classes in its evaluation and its backend's spec."""
    user = model.user
    names = tuple(user["class_names"] or dataset.class_names)
    spec = replace(dataset.spec, class_names=names)
    backend = registry.backends.get(model.backend).from_user(
        spec, weights=user["weights"], model=user["model"], params=model.params,
        layout=user["layout"], value_range=tuple(user["value_range"]),
        base_dir=user["base_dir"])
    scores = backend.predict(dataset.x_test)
    evaluation = _evaluate(dataset, scores, names)
    record = ModelRecord(
        model_key=model.key, backend=model.backend, architecture=model.architecture,
        dataset=model.dataset, train_params={"user_model": Path(user["weights"]).name},
        seed=model.seed, accuracy=evaluation.get("accuracy", float("nan")), train_seconds=0.0,
        evaluation={**evaluation, "user_model": True, "params": model.params,
                    "weights": user["weights"], "weights_sha256": user["sha256"],
                    "model": user["model"],
                    "layout": user["layout"] or type(backend).user_layout,
                    "value_range": list(user["value_range"]), "class_names": list(names),
                    "from_cache": False},
        checkpoint=user["weights"])
    return ObtainedModel(backend, record, scores, from_cache=False)


def copy_model(model: ModelPlan, source: ObtainedModel, dataset: Dataset) -> ObtainedModel:
    """``model`` (a copy) built with the weights of ``source``, untrained; XaibenchError unless
    its test scores match the source's within :data:`COPY_TOLERANCE` (relative)."""
    backend = _build(model, dataset)
    backend.set_weights(source.backend.get_weights())
    scores = backend.predict(dataset.x_test)
    gap = float(np.abs(scores - source.test_scores).max(initial=0.0))
    tolerance = COPY_TOLERANCE * max(1.0, float(np.abs(source.test_scores).max(initial=0.0)))
    if not gap <= tolerance:
        raise XaibenchError(
            f"{model.label} with the weights of {source.record.backend}:"
            f"{source.record.architecture} does not reproduce its test scores: max |difference| "
            f"{gap:.3g} > {tolerance:.3g} (do the two implementations of "
            f"'{model.architecture}' differ?)")
    evaluation = _evaluate(dataset, scores)
    record = ModelRecord(
        model_key=model.key, backend=model.backend, architecture=model.architecture,
        dataset=model.dataset, train_params={"weights_from": model.weights_from},
        seed=model.seed, accuracy=evaluation.get("accuracy", float("nan")), train_seconds=0.0,
        evaluation={**evaluation, "params": model.params, "weights_from": model.weights_from,
                    "copy_max_abs_diff": gap, "from_cache": False})
    return ObtainedModel(backend, record, scores, from_cache=False)


def evaluate(labels: np.ndarray, scores: np.ndarray, class_names: tuple[str, ...], *,
             task: str = "classification",
             target_scale: tuple[float, float] | None = None) -> dict[str, Any]:
    """The model's test evaluation for its ``task``, with the ``task`` itself.

    Classification: accuracy, per-class precision/recall/F1 and the confusion matrix (rows:
    true class). Regression (one output): R² (``r2``, 1 - SSE / SST about the test mean),
    ``rmse`` and, with the dataset's ``target_scale`` (mean, std; kept as ``target_scale``),
    ``rmse_original`` in the target's original units. :func:`~xaibench.experiment.store.headline_score` picks the
    score the model tables show.
    """
    if task == "regression":
        residual = scores[:, 0].astype(np.float64) - labels
        rmse = float(np.sqrt(np.mean(residual ** 2))) if len(labels) else float("nan")
        spread = float(np.var(labels)) if len(labels) else 0.0
        return {"task": task, "n_test": int(len(labels)), "rmse": rmse,
                "r2": 1.0 - rmse ** 2 / spread if spread > 0 else float("nan"),
                **({"rmse_original": rmse * target_scale[1],
                    "target_scale": list(target_scale)} if target_scale else {})}
    from sklearn.metrics import classification_report, confusion_matrix

    predictions = scores.argmax(axis=1)
    classes = list(range(len(class_names)))
    return {
        "task": task,
        "accuracy": float(np.mean(predictions == labels)) if len(labels) else float("nan"),
        "n_test": int(len(labels)),
        "per_class": classification_report(labels, predictions, labels=classes,
                                           target_names=list(class_names), output_dict=True,
                                           zero_division=0),
        "confusion_matrix": confusion_matrix(labels, predictions, labels=classes).tolist(),
    }


def _evaluate(dataset: Dataset, scores: np.ndarray,
              class_names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """:func:`evaluate` on ``dataset``'s test split (its class names unless given)."""
    return evaluate(dataset.y_test, scores, class_names or dataset.class_names,
                    task=dataset.task, target_scale=dataset.target_scale)


def _build(model: ModelPlan, dataset: Dataset) -> Backend:
    """``model``'s architecture (with its params) and fresh weights seeded by the run seed."""
    return registry.backends.get(model.backend).from_zoo(model.architecture, dataset.spec,
                                                         seed=model.seed, **model.params)


def _identity(model: ModelPlan) -> dict[str, Any]:
    """The model's fields as they read back from JSON (tuples become lists)."""
    return json.loads(json.dumps(asdict(model)))


def _load_cached(model: ModelPlan, dataset: Dataset,
                 path: Path) -> tuple[Backend, dict[str, Any]] | None:
    """The cached model and its sidecar, or None (a miss, or a warned-about bad checkpoint)."""
    sidecar_path = path.with_suffix(".json")
    if not path.exists() and not sidecar_path.exists():
        return None
    problem = _sidecar_problem(model, path, sidecar_path)
    if problem is None:
        backend = _build(model, dataset)
        try:
            backend.load(path)
        except XaibenchError as exc:
            problem = f"it does not load ({exc})"
        else:
            bad = backend.nonfinite_weights()
            if not bad:
                return backend, json.loads(sidecar_path.read_text())
            problem = f"its weights {', '.join(bad[:3])} hold NaN/Inf (a diverged training run)"
    warnings.warn(f"checkpoint {path} is not usable: {problem}; training the model again",
                  CheckpointWarning, stacklevel=3)
    return None


def _sidecar_problem(model: ModelPlan, path: Path, sidecar_path: Path) -> str | None:
    """Why the checkpoint at ``path`` must not be used, or None when it verifies."""
    if not path.exists():
        return "the checkpoint file is missing"
    try:
        sidecar = json.loads(sidecar_path.read_text())
    except FileNotFoundError:
        return f"its sidecar {sidecar_path.name} is missing (interrupted write?)"
    except (OSError, ValueError) as exc:
        return f"its sidecar {sidecar_path.name} is unreadable ({exc})"
    if not isinstance(sidecar, dict) or sidecar.get("model") != _identity(model):
        return f"its sidecar {sidecar_path.name} describes another model"
    if sha256_file(path) != sidecar.get("sha256"):
        return "its SHA-256 does not match the sidecar (file changed or corrupt)"
    if not isinstance(sidecar.get("train_seconds"), (int, float)):
        return f"its sidecar {sidecar_path.name} lacks the training time"
    return None


def _save(backend: Backend, model: ModelPlan, path: Path, train_seconds: float,
          history: dict[str, list[float]]) -> None:
    """Write the checkpoint, then its sidecar, each atomically."""
    with replaced_atomically(path) as tmp:
        backend.save(tmp)
        digest = sha256_file(tmp)
    sidecar = {"model": _identity(model), "sha256": digest, "train_seconds": train_seconds,
               "history": history, "backend_class": type(backend).__qualname__,
               "created": time.time()}
    write_atomic(path.with_suffix(".json"), json.dumps(sidecar, indent=1).encode())


