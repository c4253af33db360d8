"""Executors: where the cells of a run are computed; the driver alone writes the store.

``local`` (the default) computes the cells in this process, one after another
(:func:`.runner._run_pending`). ``dask`` computes them on the workers of a Dask distributed
cluster: a ``LocalCluster`` of ``workers`` processes started for the run, or the cluster whose
scheduler is at ``scheduler`` (``tcp://HOST:PORT``). On Dask

- each model is obtained once, by one task (trained into the checkpoint cache, a folder every
  worker must see: ``$XAIBENCH_CACHE`` or ``cache_dir``); the driver stores its record and
  submits its cells, one task per cell, once it is ready. A cell task loads the checkpoint and
  never trains: a checkpoint a worker cannot see fails the cell, naming the fix;
- a task returns what it computed (the cell's record, arrays and metric rows, or its error) and
  the driver writes it as it arrives, so the store has one writer and finished cells survive
  any interruption (the next run resumes);
- a worker process that dies mid-task (killed, out of memory) has its task rerun on another
  worker, at most ``retries`` times (the scheduler's ``allowed-failures``: set here for a
  ``LocalCluster``, by the cluster's own config when joining one); then the cell is failed;
- the threads of torch, TensorFlow, JAX (XLA) and BLAS in a worker are its share of its host's
  cores (cores // task threads of all workers on that host) for cells, and for training the
  thread count a local run of the driver would train with (its ``OMP_NUM_THREADS``, else all
  of the host's cores): a model trained with another thread count differs in float round-off,
  so a model does not depend on the executor (on one host);
- the registry entries of the driver (a user's own explainers, metrics ...) are registered on
  the workers too, which must be able to import them.

Both executors bound each cell by ``cell_timeout`` seconds (:func:`time_limit`) and record a
cell that raises as failed, with its error, and go on. Results do not depend on the executor,
the number of workers or the order in which cells finish: a cell's inputs are its own.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from xaibench import registry
from xaibench.errors import ConfigError, MissingFrameworkError, XaibenchError
from xaibench.experiment.checkpoints import (ObtainedModel, checkpoint_path, copy_model,
                                             obtain_model)
from xaibench.experiment.plan import Cell, ModelPlan, Plan
from xaibench.experiment.store import (CellRecord, MetricRow, ModelRecord, Store,
                                       headline_score)

if TYPE_CHECKING:
    from tqdm import tqdm

    from xaibench.data.base import Dataset
    from xaibench.experiment.config import ExperimentConfig

EXECUTORS = ("local", "dask")
#: worker deaths tolerated per task by default (Dask's own default is 3)
DEFAULT_RETRIES = 2
_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s/]+$")


# --- choosing an executor -----------------------------------------------------------------------
@dataclass(frozen=True)
class LocalExecutor:
    """Cells computed in this process, in plan order."""

    cell_timeout: float | None = None

    def run_pending(self, plan: Plan, pending: list[Cell], config: ExperimentConfig,
                    dataset: Dataset, store: Store, cache_dir: Path | None,
                    progress: bool) -> tuple[int, list[tuple[str, str]]]:
        from xaibench.experiment import runner

        return runner._run_pending(plan, pending, config, dataset, store, cache_dir, progress,
                                   cell_timeout=self.cell_timeout)


@dataclass(frozen=True)
class DaskExecutor:
    """Cells computed on a Dask cluster: a LocalCluster of ``workers`` processes, or the one
    whose scheduler is at ``scheduler``; see the module notes."""

    workers: int | None = None
    scheduler: str | None = None
    cell_timeout: float | None = None
    retries: int = DEFAULT_RETRIES
    #: seconds to wait for the scheduler at ``scheduler``
    connect_timeout: float = 15.0

    def run_pending(self, plan: Plan, pending: list[Cell], config: ExperimentConfig,
                    dataset: Dataset, store: Store, cache_dir: Path | None,
                    progress: bool) -> tuple[int, list[tuple[str, str]]]:
        from tqdm.auto import tqdm

        if not pending:
            return 0, []
        with self._client() as client, \
                tqdm(total=len(pending), desc=config.name, unit="cell",
                     disable=not progress) as bar:
            driver = _Driver(client, plan, pending, config, dataset.y_test, store, cache_dir,
                             self, bar)
            return driver.run()

    @contextmanager
    def _client(self) -> Iterator[Any]:
        """A Client of the cluster at ``scheduler``, or of a LocalCluster started for the block."""
        _, distributed = _import_dask()
        if self.scheduler is not None:
            try:
                client = distributed.Client(self.scheduler, timeout=f"{self.connect_timeout}s")
            except (OSError, TimeoutError) as exc:
                raise XaibenchError(f"cannot reach the Dask scheduler at {self.scheduler} "
                                    f"({exc}); start one with `dask scheduler` (and workers "
                                    f"with `dask worker {self.scheduler}`) or check the "
                                    f"address") from None
            with client:
                yield client
            return
        with local_cluster(self.workers or 1, self.retries) as cluster, \
                distributed.Client(cluster) as client:
            yield client


@contextmanager
def local_cluster(workers: int, retries: int) -> Iterator[Any]:
    """A ``LocalCluster`` of ``workers`` one-thread processes; a task may see ``retries`` of its
    workers die. Its nannies run in this process and would set the BLAS/OpenMP thread variables
    in its environment (a later local run would train with one thread): they are left out, the
    tasks set each worker's threads (:func:`limit_threads`)."""
    dask, distributed = _import_dask()
    unset_threads = {f"distributed.nanny.pre-spawn-environ.{variable}": None
                     for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                      "OPENBLAS_NUM_THREADS")}
    with dask.config.set({"distributed.scheduler.allowed-failures": retries, **unset_threads}), \
            distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                     dashboard_address=":0") as cluster:
        yield cluster


def make_executor(name: str = "local", *, workers: int | None = None,
                  scheduler: str | None = None, cell_timeout: float | None = None,
                  retries: int = DEFAULT_RETRIES) -> LocalExecutor | DaskExecutor:
    """The executor ``name`` with its options checked; ConfigError naming a bad option and
    the fix (``--workers``/``--scheduler`` spell the command-line options)."""
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor '{name}'; choose one of {', '.join(EXECUTORS)}")
    if cell_timeout is not None and not cell_timeout > 0:
        raise ConfigError(f"--cell-timeout {cell_timeout} must be a positive number of "
                          f"seconds; omit it for no limit")
    if name == "local":
        given = [option for option, value in (("--workers", workers), ("--scheduler", scheduler))
                 if value is not None]
        if given:
            raise ConfigError(f"{' and '.join(given)} need{'s' * (len(given) == 1)} the dask "
                              f"executor; add --executor dask")
        return LocalExecutor(cell_timeout)
    if workers is not None and scheduler is not None:
        raise ConfigError("--workers starts a local Dask cluster and --scheduler joins one; "
                          "pass only one of them")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ConfigError(f"--workers {workers} must be a positive integer (worker "
                          f"processes); e.g. --workers 2")
    if scheduler is not None and not _ADDRESS.match(scheduler):
        raise ConfigError(f"--scheduler '{scheduler}' is not a scheduler address like "
                          f"tcp://HOST:PORT; pass the address `dask scheduler` prints")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"--retries {retries} must be an integer >= 0 (reruns of a task "
                          f"whose worker died)")
    _import_dask()
    return DaskExecutor(workers=workers if scheduler is None else None, scheduler=scheduler,
                        cell_timeout=cell_timeout, retries=retries)


def _import_dask() -> tuple[Any, Any]:
    """``dask`` and ``distributed``; MissingFrameworkError naming the extra if absent."""
    try:
        import dask
        import distributed
    except ImportError:
        raise MissingFrameworkError("dask distributed", "dask") from None
    return dask, distributed


# --- a time limit on a cell ---------------------------------------------------------------------
class _TimeUp(BaseException):
    """Raised asynchronously in a thread whose time is up (a BaseException, so that the
    cell's own ``except Exception`` handlers do not swallow it)."""


#: seconds between repeats of a cell's interrupt once its time is up
_REPEAT_INTERRUPT_SECONDS = 0.5


@contextmanager
def time_limit(seconds: float | None, what: str) -> Iterator[None]:
    """XaibenchError when the block runs longer than ``seconds`` (None: no limit).

    The error is raised in the block's thread at its next Python instruction, so a call that
    stays in compiled code (one long BLAS call) ends first.
    """
    if seconds is None:
        yield
        return
    thread, lock = threading.get_ident(), threading.Lock()
    state: dict[str, Any] = {"fired": False, "done": False, "timer": None}

    def interrupt() -> None:
        with lock:
            if state["done"]:
                return
            state["fired"] = True
            _raise_in_thread(thread, _TimeUp)
            # raised again until the block ends: code the exception lands in may swallow it
            # (a garbage-collector callback, a bare except)
            state["timer"] = threading.Timer(_REPEAT_INTERRUPT_SECONDS, interrupt)
            state["timer"].daemon = True
            state["timer"].start()

    state["timer"] = threading.Timer(seconds, interrupt)
    state["timer"].daemon = True
    state["timer"].start()
    message = (f"{what} exceeded the cell timeout of {seconds:g} s; raise --cell-timeout or "
               f"make the cell smaller (fewer images, max_evals)")
    try:
        yield
    except _TimeUp:
        raise XaibenchError(message) from None
    finally:
        with lock:
            state["done"] = True  # a timer that runs now does nothing
            state["timer"].cancel()
            late = state["fired"]
        if late:
            _raise_in_thread(thread, None)  # drop it if not delivered yet
    if late:  # the block ended just as its time was up
        raise XaibenchError(message)


def _raise_in_thread(thread: int, exception: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread),
                                               ctypes.py_object(exception) if exception
                                               else ctypes.c_void_p(0))


# --- what tasks return --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Failed:
    """A task's error, one line (:func:`.runner.describe_error`)."""

    error: str


@dataclass(frozen=True)
class _ModelDone:
    record: ModelRecord
    test_scores: np.ndarray
    from_cache: bool
    worker: str


@dataclass(frozen=True)
class _CellDone:
    record: CellRecord
    arrays: dict[str, np.ndarray]
    metrics: list[MetricRow]
    summary: str


@dataclass
class _Collected:
    """Stands in for the store in a worker: keeps the one cell :func:`run_cell` puts."""

    cell: tuple[CellRecord, dict[str, np.ndarray], list[MetricRow]] | None = None

    def put_cell(self, record: CellRecord, arrays: dict[str, np.ndarray],
                 metrics: list[MetricRow] = ()) -> None:
        self.cell = (record, arrays, list(metrics))


# --- the driver ---------------------------------------------------------------------------------
@dataclass
class _Driver:
    """Submits the model tasks, then each model's cells once it is ready; writes every result
    to the store as it arrives."""

    client: Any
    plan: Plan
    pending: list[Cell]
    config: ExperimentConfig
    #: the test labels (image selection)
    labels: np.ndarray
    store: Store
    cache_dir: Path | None
    executor: DaskExecutor
    bar: tqdm
    n_finished: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: test scores of the obtained models (a copy's cells select images by its source's)
    scores: dict[str, np.ndarray] = field(default_factory=dict)

    def run(self) -> tuple[int, list[tuple[str, str]]]:
        from distributed import as_completed

        self.token = uuid.uuid4().hex[:8]
        self.threads = _threads_by_host(self.client)
        self.entries = {kind: reg.entries() for kind, reg in registry.ALL.items()}
        #: the tasks not yet handled: key -> (kind, plan item, future)
        self.tasks: dict[str, tuple[str, Any, Any]] = {}
        self.completed = as_completed()
        needed = {cell.model.key: cell.model for cell in self.pending}
        self.copies = [model for model in needed.values() if model.weights_from]
        trained = {model.key: model for model in needed.values() if not model.weights_from}
        trained.update({model.weights_from: self.plan.model(model.weights_from)
                        for model in self.copies})
        for model in trained.values():
            self._submit("model", model, _obtain_task, model, None, _training_threads())
        try:
            for future in self.completed:
                kind, item, _ = self.tasks.pop(future.key)
                outcome = _outcome(future)
                if kind == "model":
                    self._model_ready(item, outcome)
                else:
                    self._cell_done(item, outcome)
        finally:
            if self.tasks:  # interrupted: nothing more is computed for this run
                self.client.cancel([future for _, _, future in self.tasks.values()])
        return self.n_finished, self.failures

    def _submit(self, kind: str, item: Cell | ModelPlan, function: Any, *args: Any) -> None:
        key = f"xaibench-{kind}-{item.key}-{self.token}"
        future = self.client.submit(function, *args, self.config, self.cache_dir, self.threads,
                                    self.entries, self.executor.cell_timeout, key=key,
                                    pure=False)
        self.tasks[key] = (kind, item, future)
        self.completed.add(future)

    def _model_ready(self, model: ModelPlan, outcome: _ModelDone | _Failed) -> None:
        cells = [cell for cell in self.pending if cell.model.key == model.key]
        copies = [copy for copy in self.copies if copy.weights_from == model.key]
        if isinstance(outcome, _Failed):
            self.bar.write(f"FAILED {model.label}: {outcome.error}")
            for cell in cells + [c for copy in copies for c in self.pending
                                 if c.model.key == copy.key]:
                self._failed(cell, f"model {cell.model.label}: {outcome.error}")
            return
        self.scores[model.key] = outcome.test_scores
        if cells:
            self.store.put_model(outcome.record)
            how = ("cached checkpoint" if outcome.from_cache
                   else f"trained in {outcome.record.train_seconds:.1f} s")
            score, value = headline_score(outcome.record.evaluation)
            self.bar.write(f"model {model.label}: test {score} {value:.3f} "
                           f"({how}, on {outcome.worker})")
        from xaibench.experiment.runner import select_images

        selecting = self.scores[model.weights_from or model.key]
        image_ids = select_images(self.config.images, self.labels, selecting.argmax(axis=1))
        source = self.plan.model(model.weights_from) if model.weights_from else None
        for cell in cells:
            self._submit("cell", cell, _cell_task, cell, source, image_ids)
        for copy in copies:
            self._submit("model", copy, _obtain_task, copy, model, _training_threads())

    def _cell_done(self, cell: Cell, outcome: _CellDone | _Failed) -> None:
        if isinstance(outcome, _Failed):
            self._failed(cell, outcome.error)
            return
        self.store.put_cell(outcome.record, outcome.arrays, outcome.metrics)
        self.n_finished += 1
        self.bar.write(outcome.summary)
        self.bar.update(1)

    def _failed(self, cell: Cell, error: str) -> None:
        from xaibench.experiment.runner import _record

        self.store.put_failure(_record(cell), error)
        self.failures.append((cell.label, error))
        self.bar.write(f"FAILED {cell.label}: {error}")
        self.bar.update(1)


def _outcome(future: Any) -> Any:
    """The task's result; a :class:`_Failed` when its workers kept dying."""
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker as exc:
        return _Failed(f"its worker process died each time it ran it ({exc}); it was killed "
                       f"or ran out of memory: give workers more memory, or raise --retries")


def _threads_by_host(client: Any) -> dict[str, int]:
    """Threads per task on each host of the cluster: its cores // the task threads of all
    workers on it (at least 1)."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    cores = client.run(_available_cores)
    slots: dict[str, int] = {}
    for address, info in workers.items():
        slots[info["host"]] = slots.get(info["host"], 0) + info["nthreads"]
    by_host = {}
    for address, info in workers.items():
        by_host[info["host"]] = max(1, cores.get(address, 1) // slots[info["host"]])
    return by_host


def _available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _training_threads() -> int | None:
    """The threads a local run of this process trains with: its ``OMP_NUM_THREADS`` when set
    (torch, TensorFlow and BLAS follow it), else ``None`` (all of the worker host's cores)."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


# --- on the workers -----------------------------------------------------------------------------
#: per worker process: the loaded dataset, models and warmed-up (model, explainer) pairs
_WORKER: dict[str, Any] = {"dataset": None, "models": {}, "warmed": set()}
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                     "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def _obtain_task(model: ModelPlan, source: ModelPlan | None, training_threads: int | None,
                 config: ExperimentConfig, cache_dir: Path | None, threads: dict[str, int],
                 entries: dict[str, list[registry.Entry]],
                 cell_timeout: float | None) -> _ModelDone | _Failed:
    """Obtain ``model`` (train it into the checkpoint cache, load it, or copy ``source``)
    with ``training_threads`` (``None``: all the host's cores), as a local run of the driver
    trains: the thread count splits float reductions differently, and the model must not
    depend on the executor."""
    try:
        host = _prepare_worker(threads, entries)
        limit_threads(training_threads or _available_cores())
        dataset = _dataset(config)
        if source is None:
            obtained = obtain_model(model, dataset, cache_dir=cache_dir, progress=False)
        else:
            obtained = copy_model(model, _model(source, None, dataset, cache_dir), dataset)
        _keep(model, obtained)
        return _ModelDone(obtained.record, obtained.test_scores, obtained.from_cache, host)
    except Exception as exc:  # noqa: BLE001 - the driver records it, the grid goes on
        from xaibench.experiment.runner import describe_error

        return _Failed(describe_error(exc))


def _cell_task(cell: Cell, source: ModelPlan | None, image_ids: np.ndarray,
               config: ExperimentConfig, cache_dir: Path | None, threads: dict[str, int],
               entries: dict[str, list[registry.Entry]],
               cell_timeout: float | None) -> _CellDone | _Failed:
    """Run ``cell`` on its (obtained, never trained here) model; return what it computed."""
    from xaibench.experiment.runner import describe_error, run_cell, select_background

    try:
        _prepare_worker(threads, entries)
        dataset = _dataset(config)
        obtained = _model(cell.model, source, dataset, cache_dir)
        _prepare_worker(threads, entries)  # the model's framework is imported now
        warmed = (cell.model.key, cell.explainer) in _WORKER["warmed"]
        collected = _Collected()
        with time_limit(cell_timeout, f"cell {cell.label}"):
            summary = run_cell(cell, obtained.backend, dataset, image_ids, obtained.test_scores,
                               select_background(config, dataset), config, collected,
                               warm_up=not warmed)
        _WORKER["warmed"].add((cell.model.key, cell.explainer))
        return _CellDone(*collected.cell, summary)
    except Exception as exc:  # noqa: BLE001 - the driver records it, the grid goes on
        return _Failed(describe_error(exc))


def _prepare_worker(threads: dict[str, int], entries: dict[str, list[registry.Entry]]) -> str:
    """Limit this process's threads to its host's share, register the driver's registry
    entries this process lacks; return the worker's address."""
    from distributed import get_worker

    worker = get_worker()
    host = worker.address.split("://")[-1].rsplit(":", 1)[0]
    limit_threads(threads.get(host, max(1, _available_cores() // worker.state.nthreads)))
    for kind, kind_entries in entries.items():
        for entry in kind_entries:
            registry.ALL[kind].adopt(entry)
    return worker.address


def limit_threads(n: int) -> None:
    """Use ``n`` threads in this process: BLAS/OpenMP now (threadpoolctl), torch now if
    imported, TensorFlow and XLA (JAX) when they are first imported (environment)."""
    from threadpoolctl import threadpool_limits

    for variable in _THREAD_VARIABLES:
        os.environ[variable] = str(n)
    flags = [flag for flag in os.environ.get("XLA_FLAGS", "").split()
             if not flag.startswith(("--xla_cpu_multi_thread_eigen", "intra_op_parallelism"))]
    os.environ["XLA_FLAGS"] = " ".join(flags + [f"--xla_cpu_multi_thread_eigen={n > 1}".lower(),
                                                f"intra_op_parallelism_threads={n}"])
    threadpool_limits(limits=n)
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


def _dataset(config: ExperimentConfig) -> Dataset:
    """The run's dataset, loaded once per worker process (per dataset config)."""
    from xaibench.experiment.runner import load_dataset

    key = (config.dataset.name, repr(config.dataset.params))
    if _WORKER["dataset"] is None or _WORKER["dataset"][0] != key:
        _WORKER["dataset"] = (key, load_dataset(config))
    return _WORKER["dataset"][1]


def _keep(model: ModelPlan, obtained: ObtainedModel) -> None:
    """Keep ``obtained`` for the next cells of this process (the two latest models)."""
    models = _WORKER["models"]
    models.pop(model.key, None)
    models[model.key] = obtained
    while len(models) > 2:
        models.pop(next(iter(models)))


def _model(model: ModelPlan, source: ModelPlan | None, dataset: Dataset,
           cache_dir: Path | None) -> ObtainedModel:
    """``model`` as obtained by its task: kept in this process, else loaded from the
    checkpoint cache (or copied from ``source``'s); never trained here."""
    if model.key in _WORKER["models"]:
        return _WORKER["models"][model.key]
    if source is not None:
        obtained = copy_model(model, _model(source, None, dataset, cache_dir), dataset)
    else:
        if model.user is None and not checkpoint_path(model, cache_dir).exists():
            raise XaibenchError(
                f"the checkpoint of {model.label} ({checkpoint_path(model, cache_dir)}) is not "
                f"visible on this worker; point XAIBENCH_CACHE at a folder every worker shares")
        obtained = obtain_model(model, dataset, cache_dir=cache_dir, progress=False)
    _keep(model, obtained)
    return obtained
