"""Run an experiment: obtain each model, explain its selected test images cell by cell, store.

Cells already ``done`` in the results store are skipped, so an interrupted run resumes where it
stopped; failed cells are retried, done cells whose arrays are missing or corrupt recomputed. A
cell that raises is recorded as failed with its error and the grid goes on;
``KeyboardInterrupt`` and SIGTERM stop the run (finished cells stay stored, status "aborted").
One run at a time writes a results directory (a lock; a second run is refused naming the
first's pid), and a directory holds the results of one configuration and data only: a run of
another is refused unless ``replace`` discards the old results.

A copied model (``weights_from``) is built from its source model (obtained first, and kept in
memory while copies of it are pending) and explains the test images selected by the *source's*
predictions, so every model of a parity experiment explains the same images.

Store meta written: ``config`` (TOML text), ``resolved_config`` (what identifies the results,
see :func:`resolved_config`), ``name``, ``versions``, ``platform``, ``status`` (running /
finished / aborted), ``pid`` (of the last run), ``class_names``, ``feature_names`` (of
tabular datasets), ``started_at`` (first run into this store), ``finished_at`` (last run) and
``duration_seconds`` (summed over all runs into this store), ``planned_cells`` (the number of
cells in the plan: ``xaibench status`` counts those not stored as pending).

Cells are computed by an executor (:mod:`.executors`): in this process, or on Dask workers;
either way this process alone writes the store.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from tqdm.auto import tqdm

from xaibench import registry
from xaibench.backend import Attribution, Backend
from xaibench.data.base import Dataset
from xaibench.errors import ConfigError, TerminatedError, XaibenchError
from xaibench.experiment.checkpoints import ObtainedModel, copy_model, obtain_model
from xaibench.experiment.config import ExperimentConfig, ImagesConfig
from xaibench.experiment.executors import DaskExecutor, LocalExecutor, time_limit
from xaibench.experiment.plan import Cell, ModelPlan, Plan, data_fingerprint, make_plan
from xaibench.experiment.store import (CellRecord, MetricRow, Store, check_writable, discard,
                                       headline_score, locked)
from xaibench.metrics.base import MetricContext

#: distributions whose versions are recorded with the results (when installed)
RECORDED_PACKAGES = ("numpy", "shap", "scikit-learn", "opencv-python-headless", "torch",
                     "tensorflow", "keras", "jax", "flax")


@dataclass(frozen=True)
class RunSummary:
    """What a run did: cells in the plan, already done before, finished now, failed now."""

    output: Path
    n_cells: int
    n_skipped: int
    n_finished: int
    #: (cell label, error message) of the cells that failed in this run
    failures: tuple[tuple[str, str], ...]
    seconds: float

    def __str__(self) -> str:
        return (f"{self.n_finished} cells finished, {len(self.failures)} failed, "
                f"{self.n_skipped} already done (of {self.n_cells}) in {self.seconds:.1f} s "
                f"-> {self.output}")


def run(config: ExperimentConfig, output: str | Path | None = None, *, progress: bool = True,
        cache_dir: Path | None = None, replace: bool = False,
        executor: LocalExecutor | DaskExecutor | None = None) -> RunSummary:
    """Run every cell of ``config`` not yet done in the store at ``output`` (or config.output).

    The results directory is checked (writable) and locked first; ``replace`` discards the
    results it holds. The dataset is loaded and planned with its fingerprint; a store holding
    results of another configuration is refused (see :func:`refuse_other_config`), and done
    cells whose arrays are missing or corrupt are computed again. ``cache_dir`` overrides the
    checkpoint cache root (see :mod:`.checkpoints`). ``executor`` computes the cells (default:
    :class:`.executors.LocalExecutor`, in this process).
    """
    started = time.time()
    out = Path(output if output is not None else config.output)
    check_writable(out)
    with locked(out), _sigterm_interrupts():
        if replace:
            discard(out)
        store = Store(out)
        dataset = load_dataset(config)
        fingerprint = data_fingerprint(dataset, config.dataset.n_train)
        plan, resolved = make_plan(config, fingerprint), resolved_config(config, fingerprint)
        refuse_other_config(store, plan, resolved)
        pending = _pending(store, plan)
        previous_seconds = _record_start(store, config, resolved, dataset, started)
        store.set_meta("planned_cells", len(plan.cells))
        n_finished, failures, status = 0, [], "aborted"
        try:
            n_finished, failures = (executor or LocalExecutor()).run_pending(
                plan, pending, config, dataset, store, cache_dir, progress)
            status = "finished"
        finally:
            finished = time.time()
            for key, value in {"finished_at": finished, "status": status,
                               "duration_seconds": previous_seconds + finished - started}.items():
                store.set_meta(key, value)
    return RunSummary(output=out, n_cells=len(plan.cells), n_skipped=len(plan.cells) - len(pending),
                      n_finished=n_finished, failures=tuple(failures), seconds=finished - started)


def resolved_config(config: ExperimentConfig, fingerprint: str | None) -> dict[str, Any]:
    """What identifies a run's results: the config as resolved (without name, output and
    source text) and the data's fingerprint, JSON-shaped."""
    fields = {key: value for key, value in asdict(config).items()
              if key not in ("name", "output", "source")}
    return json.loads(json.dumps({**fields, "data": fingerprint}, default=str))


def refuse_other_config(store: Store, plan: Plan, resolved: dict[str, Any]) -> None:
    """ConfigError if ``store`` holds models or cells that ``plan`` lacks (results of an
    edited config or of changed data), naming what differs; they would be pooled with the
    plan's. Adding models or explainers keeps every stored result in the plan: that resumes."""
    model_keys, cell_keys = store.keys()
    stale_models = len(model_keys - {model.key for model in plan.models})
    stale_cells = len(cell_keys - {cell.key for cell in plan.cells})
    if not stale_models and not stale_cells:
        return
    recorded = store.get_meta("resolved_config")
    differ = (", ".join(differences(recorded, resolved)) or "how results are keyed"
              if recorded is not None else "unknown: the store records no resolved config")
    raise ConfigError(f"{store.root} holds {stale_cells} cell(s) and {stale_models} model(s) "
                      f"of another configuration (differs in: {differ}); choose another "
                      f"--output, or pass --replace to discard them")


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Dotted paths where two JSON-shaped values differ (into dicts, not lists); "the data's
    content" for the fingerprint."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [part for key in sorted(set(old) | set(new), key=str)
                for part in differences(old.get(key, _ABSENT), new.get(key, _ABSENT),
                                        f"{path}.{key}" if path else str(key))]
    if old == new:
        return []
    return ["the data's content" if path == "data" else path]


_ABSENT = "<absent>"


def _pending(store: Store, plan: Plan) -> list[Cell]:
    """The cells of ``plan`` not done in ``store``, and done ones whose arrays are missing or
    fail their hash (said, and computed again)."""
    done = store.done_keys()
    broken = store.broken_arrays(done & {cell.key for cell in plan.cells})
    for problem in broken.values():
        tqdm.write(f"note: computing again the arrays of {problem}")
    return [cell for cell in plan.cells if cell.key not in done or cell.key in broken]


def _record_start(store: Store, config: ExperimentConfig, resolved: dict[str, Any],
                  dataset: Dataset, started: float) -> float:
    """Write the run's meta (status "running"); say if the previous run was interrupted;
    return the seconds of the previous runs."""
    if store.get_meta("status") == "running":  # this process holds the lock: it died
        tqdm.write(f"note: the previous run (pid {store.get_meta('pid', 'unknown')}) was "
                   f"interrupted before it finished; resuming")
    for key, value in {"config": config.source, "name": config.name, "status": "running",
                       "pid": os.getpid(), "resolved_config": resolved,
                       "started_at": store.get_meta("started_at", started),
                       "class_names": {**store.get_meta("class_names", {}),
                                       config.dataset.name: list(dataset.class_names)},
                       **_feature_names_meta(store, config.dataset.name, dataset),
                       **environment()}.items():
        store.set_meta(key, value)
    return store.get_meta("duration_seconds", 0.0)


def _feature_names_meta(store: Store, name: str, dataset: Dataset) -> dict[str, Any]:
    """``{"feature_names": {dataset: names}}`` for a tabular dataset (its spec names its
    features; the report then shows feature importance), else nothing."""
    names = dataset.spec.feature_names
    if names is None:
        return {}
    return {"feature_names": {**store.get_meta("feature_names", {}), name: list(names)}}


def _run_pending(plan: Plan, pending: list[Cell], config: ExperimentConfig, dataset: Dataset,
                 store: Store, cache_dir: Path | None, progress: bool, *,
                 cell_timeout: float | None = None) -> tuple[int, list[tuple[str, str]]]:
    """Run the ``pending`` cells model by model, each within ``cell_timeout`` seconds; the
    number finished and the failures."""
    n_finished, failures = 0, []
    if not pending:
        return n_finished, failures
    background = select_background(config, dataset)
    models = _Models(plan, pending, dataset, cache_dir, progress)
    with tqdm(total=len(pending), desc=config.name, unit="cell", disable=not progress) as bar:
        for model in plan.models:
            cells = [cell for cell in pending if cell.model.key == model.key]
            for cell, error in _run_model(model, cells, config, dataset, background, store,
                                          models, bar, cell_timeout):
                if error is None:
                    n_finished += 1
                else:
                    failures.append((cell.label, error))
    return n_finished, failures


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Within the block SIGTERM raises :class:`TerminatedError` (a KeyboardInterrupt) once,
    so a terminated run ends like Ctrl-C: status "aborted", finished cells kept. Signals
    reach the main thread only; elsewhere the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def interrupt(signum: int, frame: Any) -> None:
        if not received:  # a second SIGTERM must not break the recording of the first
            received.append(signum)
            raise TerminatedError("terminated by SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Models:
    """Obtains the pending models; a trained model is kept in memory until the last of its
    uses (its own cells, copies of it) has had it."""

    def __init__(self, plan: Plan, pending: list[Cell], dataset: Dataset,
                 cache_dir: Path | None, progress: bool) -> None:
        self.plan, self.dataset, self.cache_dir = plan, dataset, cache_dir
        self.progress = progress
        models = {cell.model.key: cell.model for cell in pending}.values()
        self.uses = Counter(model.weights_from or model.key for model in models)
        self.kept: dict[str, ObtainedModel] = {}

    def get(self, model: ModelPlan) -> tuple[ObtainedModel, np.ndarray]:
        """``model`` ready to explain, and the test scores that select its images: its
        source's for a copy (so that both explain the same images)."""
        if model.weights_from is None:
            obtained = self._trained(model)
            return obtained, obtained.test_scores
        source = self._trained(self.plan.model(model.weights_from))
        return copy_model(model, source, self.dataset), source.test_scores

    def _trained(self, model: ModelPlan) -> ObtainedModel:
        obtained = self.kept.pop(model.key, None) or obtain_model(
            model, self.dataset, cache_dir=self.cache_dir, progress=self.progress)
        self.uses[model.key] -= 1
        if self.uses[model.key] > 0:
            self.kept[model.key] = obtained
        return obtained


def _run_model(model: ModelPlan, cells: list[Cell], config: ExperimentConfig, dataset: Dataset,
               background: np.ndarray, store: Store, models: _Models, bar: tqdm,
               cell_timeout: float | None = None) -> Iterator[tuple[Cell, str | None]]:
    """Obtain ``model`` and run its ``cells``; yield each cell with its error (None: done)."""
    if not cells:
        return
    try:
        obtained, selecting_scores = models.get(model)
    except Exception as exc:  # noqa: BLE001 - recorded, the grid goes on
        error = describe_error(exc)
        bar.write(f"FAILED {model.label}: {error}")
        for cell in cells:
            store.put_failure(_record(cell), f"model {model.label}: {error}")
            bar.update(1)
            yield cell, error
        return
    store.put_model(obtained.record)
    if model.weights_from:
        how = (f", weights of {models.plan.model(model.weights_from).label} (max |score "
               f"difference| {obtained.record.evaluation['copy_max_abs_diff']:.1e})")
    elif model.user is not None:
        how = f" (user model, loaded from {Path(model.user['weights']).name})"
    else:
        how = (" (cached checkpoint)" if obtained.from_cache
               else f", trained in {obtained.record.train_seconds:.1f} s")
    score, value = headline_score(obtained.record.evaluation)
    bar.write(f"model {model.label}: test {score} {value:.3f}{how}")
    image_ids = select_images(config.images, dataset.y_test, selecting_scores.argmax(axis=1))
    requested = config.images.first + config.images.correct + config.images.wrong
    if len(image_ids) < requested:
        bar.write(f"note: {model.label}: the test split has only {len(image_ids)} of the "
                  f"{requested} images [images] asks for")
    warmed: set[str] = set()
    for cell in cells:
        try:
            with time_limit(cell_timeout, f"cell {cell.label}"):
                summary = run_cell(cell, obtained.backend, dataset, image_ids,
                                   obtained.test_scores, background, config, store,
                                   warm_up=cell.explainer not in warmed)
            bar.write(summary)
            warmed.add(cell.explainer)
            error = None
        except Exception as exc:  # noqa: BLE001 - recorded, the grid goes on
            error = describe_error(exc)
            store.put_failure(_record(cell), error)
            bar.write(f"FAILED {cell.label}: {error}")
        bar.update(1)
        yield cell, error


def run_cell(cell: Cell, backend: Backend, dataset: Dataset, image_ids: np.ndarray,
             test_scores: np.ndarray, background: np.ndarray, config: ExperimentConfig,
             store: Store, *, warm_up: bool = False) -> str:
    """Explain the selected images for ``cell``, score the metrics, store; return a summary.

    With ``warm_up`` the explanation first runs once, untimed, on one image, so one-time costs
    (numba and XLA compilation, tf.function tracing) are not charged to the first cell of an
    explainer and timings compare across frameworks. Explainers and metrics get what they
    declare they consume (:func:`explain_params`, :func:`score_metric`).
    """
    x = dataset.x_test[image_ids]
    masks = None if dataset.masks_test is None else dataset.masks_test[image_ids]
    params = explain_params(cell, background)
    if warm_up:
        backend.explain(cell.explainer, x[:1], cell.targets, **params)
    attribution = backend.explain(cell.explainer, x, cell.targets, **params)
    context = MetricContext()
    inputs = {"masker": cell.masker, "masks": masks, "context": context,
              "explain_params": params}
    rows = [row for name in config.metrics for ruler in metric_rulers(name, config)
            for row in score_metric(name, config.metric_params.get(name, {}), cell.seed,
                                    backend, x, attribution, inputs, ruler=ruler)]
    arrays = _cell_arrays(attribution, x, masks, dataset.y_test[image_ids],
                          test_scores[image_ids], image_ids, context)
    store.put_cell(_record(cell, attribution.n_images, attribution.wall_seconds,
                           attribution.model_evals), arrays, rows)
    return _summary(cell, attribution)


def explain_params(cell: Cell, background: np.ndarray) -> dict[str, Any]:
    """The cell's explainer params plus the runner's inputs its explainer consumes
    (:func:`explainer_args`)."""
    return explainer_args(cell.explainer, cell.params, cell.masker, background)


def explainer_args(explainer: str, params: dict[str, Any], masker: str | None,
                   background: np.ndarray | None) -> dict[str, Any]:
    """``params`` plus the inputs ``explainer`` consumes: the masker spec ``masker`` (a tabular
    one built over the background rows, :func:`~xaibench.explain.maskers.masker_for`) and the
    ``background`` images."""
    from xaibench.explain.maskers import masker_for

    consumes = registry.explainers.entry(explainer).consumes
    supplied = {"masker": masker and masker_for(masker, background), "background": background}
    return {**params, **{key: value for key, value in supplied.items() if key in consumes}}


def metric_rulers(name: str, config: ExperimentConfig) -> tuple[str | None, ...]:
    """The rulers metric ``name`` is scored under: every ruler of ``[evaluation]`` for a metric
    consuming one, else (None,) — scored once, with its own params."""
    if "ruler" in registry.metrics.get(name).consumes and config.evaluation.rulers:
        return config.evaluation.rulers
    return (None,)


def score_metric(name: str, params: dict[str, Any], seed: int, backend: Backend,
                 x: np.ndarray, attribution: Attribution, inputs: dict[str, Any], *,
                 ruler: str | None = None) -> list[MetricRow]:
    """The rows of metric ``name`` built with ``params`` (and the cell's ``seed`` unless they
    set one, if it consumes a seed; ``ruler`` as its ``replacement``), called with the
    ``inputs`` it consumes; the rows carry the ruler ("" without)."""
    metric_class = registry.metrics.get(name)
    if "seed" in metric_class.consumes:
        params = {"seed": seed, **params}
    if ruler is not None:
        params = {**params, "replacement": ruler}
    metric = metric_class(**params)
    scores = np.asarray(metric(backend, x, attribution, **{
        key: value for key, value in inputs.items() if key in metric_class.consumes}),
        dtype=np.float64)
    if scores.shape != attribution.output_indices.shape:
        raise XaibenchError(f"metric '{name}' returned shape {scores.shape}, expected "
                            f"{attribution.output_indices.shape} (images, outputs)")
    return [MetricRow(name, image, output, float(scores[image, output]),
                      metric.higher_is_better, metric.category, ruler or "")
            for image in range(scores.shape[0]) for output in range(scores.shape[1])]


def _cell_arrays(attribution: Attribution, x: np.ndarray, masks: np.ndarray | None,
                 labels: np.ndarray, scores: np.ndarray, image_ids: np.ndarray,
                 context: MetricContext) -> dict[str, np.ndarray]:
    """The arrays stored with a cell: the attribution, the images with their labels, the
    model's predictions (from its test ``scores``) and ids, masks, and the metrics' arrays."""
    arrays = {
        "values": attribution.values.astype(np.float32),
        "output_indices": attribution.output_indices,
        "base_values": attribution.base_values,
        "model_outputs": attribution.model_outputs,
        "images": x,
        "labels": labels,
        "predictions": scores.argmax(axis=1),
        "image_ids": image_ids,
    }
    if attribution.layer_values is not None:
        arrays["layer_values"] = attribution.layer_values.astype(np.float32)
    if masks is not None:
        arrays["masks"] = masks
    clash = sorted(set(context.arrays) & set(arrays))
    if clash:
        raise XaibenchError(f"metrics hand on arrays named like the cell's own: {clash}")
    return {**arrays, **context.arrays}


def _summary(cell: Cell, attribution: Attribution) -> str:
    """The one-line report of a finished cell."""
    n = max(attribution.n_images, 1)
    additivity = (f"mean additivity gap {attribution.additivity_gap().mean():.2e}"
                  if registry.explainers.entry(cell.explainer).additive
                  else "not additive (no SHAP values)")
    return (f"done {cell.label}: {attribution.n_images} images, "
            f"{attribution.wall_seconds / n:.3f} s/image, {attribution.model_evals / n:.0f} "
            f"evals/image, {additivity}")


def load_dataset(config: ExperimentConfig) -> Dataset:
    """The configured dataset; ConfigError if a metric needs ground-truth masks it lacks."""
    dataset = registry.datasets.get(config.dataset.name)(**config.dataset.params)
    if dataset.masks_test is None:
        needing = [m for m in config.metrics if "masks" in registry.metrics.get(m).consumes]
        if needing:
            raise ConfigError(f"metrics {needing} need ground-truth masks, which dataset "
                              f"'{config.dataset.name}' does not have")
    return dataset


def select_background(config: ExperimentConfig, dataset: Dataset) -> np.ndarray:
    """``n_background`` training images (from the first n_train), chosen with the run seed."""
    return draw_background(dataset.x_train[:config.dataset.n_train],
                           config.dataset.n_background, config.seed)


def draw_background(pool: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` of the images ``pool`` (all if fewer), drawn without replacement with ``seed``, in
    pool order."""
    chosen = np.random.default_rng(seed).choice(len(pool), size=min(n, len(pool)),
                                                 replace=False)
    return pool[np.sort(chosen)]


def select_images(images: ImagesConfig, labels: np.ndarray,
                  predictions: np.ndarray) -> np.ndarray:
    """Test indices: the first ``images.first``, then the next ``correct`` correctly and
    ``wrong`` wrongly predicted ones in test order (fewer if the test split has fewer)."""
    rest = np.arange(min(images.first, len(labels)), len(labels))
    right = predictions[rest] == labels[rest]
    return np.concatenate([np.arange(min(images.first, len(labels))),
                           rest[right][:images.correct], rest[~right][:images.wrong]])


def describe_error(exc: BaseException) -> str:
    """One line: the message of an XaibenchError; otherwise the exception and where it arose."""
    if isinstance(exc, XaibenchError):
        return str(exc)
    message = traceback.format_exception_only(exc)[-1].strip()
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        message += f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno} " \
                   f"in {frames[-1].name})"
    return message


def environment() -> dict[str, Any]:
    """``versions`` (Python and the installed :data:`RECORDED_PACKAGES`) and ``platform``."""
    versions = {"python": sys.version.split()[0]}
    for package in RECORDED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {"versions": versions, "platform": platform.platform()}


def _record(cell: Cell, n_images: int = 0, wall_seconds: float = 0.0,
            model_evals: int = 0) -> CellRecord:
    """The store row of ``cell``: its seed is the run seed (the replication), its params the
    explainer params (with the cell-derived seed, if any) plus ``targets``."""
    model = cell.model
    return CellRecord(cell_key=cell.key, dataset=model.dataset, backend=model.backend,
                      architecture=model.architecture, model_key=model.key,
                      explainer=cell.explainer, masker=cell.masker,
                      params={**cell.params, "targets": cell.targets}, seed=model.seed,
                      n_images=n_images, wall_seconds=wall_seconds, model_evals=model_evals)
