"""The Dask executor on loopback (a LocalCluster of 2 worker processes): its stored results
equal the local executor's, a failing cell is recorded while the others finish, a worker killed
mid-cell has its cell rerun elsewhere, a driver killed by SIGKILL resumes without losing or
duplicating a cell, a cell past its timeout fails; bad executor options are refused naming the
fix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.reliability._runs import FAST_TOML, fast_config, planned_keys, run
from tests.reliability.test_determinism import _assert_bit_identical, _metrics
from xaibench import registry
from xaibench.cli import main
from xaibench.errors import ConfigError, XaibenchError
from xaibench.explain.baselines import random
from xaibench.experiment.executors import DaskExecutor, local_cluster, make_executor
from xaibench.experiment.store import Store

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[2]
#: explainers of these tests, registered on the driver (and so on the workers)
EXPLAINERS = {"explode": f"{__name__}:explode", "slow": f"{__name__}:slow"}


def explode(backend, x, output_indices, *, seed: int = 0):
    raise RuntimeError("deliberate failure")


def slow(backend, x, output_indices, *, seconds: float = 1.0, marker: str = "", seed: int = 0):
    """Noise after ``seconds`` (in short sleeps, so a timeout can interrupt it); appends this
    process's pid to ``marker`` when it starts."""
    if marker:
        with open(marker, "a") as file:
            file.write(f"{os.getpid()}\n")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    return random(backend, x, output_indices, seed=seed)


def _register(explainers=registry.explainers) -> None:
    for name, target in EXPLAINERS.items():
        if name not in explainers:
            explainers.register(name, target)


def with_explainers(*lines: str) -> str:
    """The fast experiment with these [[explainers]] tables instead of its own."""
    return FAST_TOML.split("[[explainers]]")[0] + "".join(
        f"[[explainers]]\n{line}\n\n" for line in lines)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The checkpoint cache of this module's runs, with :data:`EXPLAINERS` registered on the
    driver (a copy of the explainer registry, for this module only)."""
    pytest.importorskip("torch")
    explainers = registry.Registry(registry.explainers.kind)
    for entry in registry.explainers.entries():
        explainers.adopt(entry)
    _register(explainers)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registry, "explainers", explainers)
        patch.setitem(registry.ALL, explainers.kind, explainers)
        yield tmp_path_factory.mktemp("checkpoints")


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes of one thread; a task may see two of its workers die."""
    with local_cluster(2, retries=2) as local:
        yield local


@pytest.fixture
def dask(cluster):
    return DaskExecutor(scheduler=cluster.scheduler_address)


def test_dask_stores_the_local_executors_results_with_one_or_two_workers(tmp_path, cache,
                                                                        dask):
    config = fast_config()
    stores = []
    for name, executor in [("local", None), ("two", dask),
                           ("one", make_executor("dask", workers=1))]:
        # fresh checkpoint caches: the model is trained by each executor
        summary = run(config, tmp_path / name, tmp_path / f"cache_{name}", executor=executor)
        assert (summary.n_finished, summary.failures) == (3, ()), summary
        stores.append(Store(tmp_path / name))
    first = stores[0]
    for other in stores[1:]:
        assert first.done_keys() == other.done_keys() == planned_keys(config)
        for key in sorted(first.done_keys()):
            _assert_bit_identical(first.load_arrays(key), other.load_arrays(key), cell=key)
        columns = ["cell_key", "metric", "image", "output", "value"]
        assert _metrics(first)[columns].equals(_metrics(other)[columns])
        models = [store.frame("models")[["model_key", "accuracy"]] for store in (first, other)]
        assert models[0].equals(models[1])


def test_a_local_cluster_leaves_this_processs_thread_variables_alone(monkeypatch):
    """Its nannies run in this process; a local run after it trains with the same threads."""
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    with local_cluster(1, retries=0) as one:
        with distributed.Client(one) as client:
            client.run(os.getpid)  # a worker process has started
    assert [os.environ.get(name) for name in names] == [None] * 3


def test_a_failing_cell_is_recorded_with_its_error_and_the_others_finish(tmp_path, cache,
                                                                        dask, capsys):
    config = fast_config(with_explainers('name = "random"', 'name = "explode"',
                                         'name = "random"\ntargets = 2'))
    summary = run(config, tmp_path / "out", cache, executor=dask)
    assert summary.n_finished == 2
    [(label, error)] = summary.failures
    assert label == "explode/-/torch:mlp" and "RuntimeError: deliberate failure" in error
    assert "test_dask.py" in error  # where it arose
    cells = Store(tmp_path / "out").frame("cells").set_index("explainer")
    assert cells.loc["explode", "status"] == "failed" and "deliberate" in cells.loc["explode",
                                                                                  "error"]
    assert main(["status", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "2 done, 1 failed, 0 pending (of 3 cells)" in out
    assert "failed explode/-/torch:mlp: RuntimeError: deliberate failure" in out


def test_a_worker_killed_mid_cell_has_the_cell_rerun_and_the_run_completes(tmp_path, cache,
                                                                          dask):
    marker = tmp_path / "started"
    config = fast_config(with_explainers(
        *(f'name = "slow"\ntargets = {k}\nparams = {{ seconds = 1.0, marker = "{marker}" }}'
          for k in (1, 2))))
    killed = []

    def kill_first_started() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            pids = marker.read_text().split() if marker.exists() else []
            if pids:
                os.kill(int(pids[0]), signal.SIGKILL)
                killed.append(int(pids[0]))
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_started)
    killer.start()
    summary = run(config, tmp_path / "out", cache, executor=dask)
    killer.join()
    assert killed, "no cell started"
    assert (summary.n_finished, summary.failures) == (2, ()), summary
    # a pid per explain call (a warm-up call included); the rerun may land on the surviving
    # worker or on the one the nanny restarts, so only "not the killed process" is fixed
    started = marker.read_text().split()
    assert started.count(str(killed[0])) == 1 and len(set(started)) >= 2, \
        "the killed cell was rerun in another process"
    assert Store(tmp_path / "out").done_keys() == planned_keys(config)


#: the CLI with the slow explainer registered
CLI = f"""
import sys
from {__name__} import _register
_register()
from xaibench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_driver_killed_by_sigkill_resumes_with_every_cell_exactly_once(tmp_path, cache):
    psutil = pytest.importorskip("psutil")
    toml = with_explainers(*(f'name = "slow"\ntargets = {k}\nparams = {{ seconds = {s} }}'
                             for k, s in ((1, 0.1), (2, 3.0), (3, 3.0))))
    (tmp_path / "slow.toml").write_text(toml)
    out = tmp_path / "out"
    env = {**os.environ, "XAIBENCH_CACHE": str(cache), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    driver = subprocess.Popen([sys.executable, "-c", CLI, "run", str(tmp_path / "slow.toml"),
                               "--output", str(out), "--no-progress", "--executor", "dask",
                               "--workers", "2"], env=env, text=True, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    children = []
    try:
        for line in driver.stdout:
            if line.startswith("done "):
                children = psutil.Process(driver.pid).children(recursive=True)
                driver.send_signal(signal.SIGKILL)
                break
        driver.wait(timeout=60)
    finally:
        for child in children:  # the orphaned worker processes
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
    assert driver.returncode == -signal.SIGKILL
    store = Store(out)
    assert store.run_status() == "interrupted" and len(store.done_keys()) == 1

    config = fast_config(toml)
    summary = run(config, out, cache)  # resumes (here with the local executor)
    assert (summary.n_finished, summary.n_skipped, summary.failures) == (2, 1, ())
    cells = store.frame("cells")
    assert sorted(cells["cell_key"]) == sorted(planned_keys(config))
    assert (cells["status"] == "done").all()
    assert store.frame("metrics").groupby("cell_key").size().to_dict() == \
        {cell.cell_key: 2 * cell.params["targets"] for cell in cells.itertuples()}
    assert {path.stem for path in (out / "arrays").glob("*.npz")} == planned_keys(config)


def test_a_cell_past_its_timeout_fails_naming_the_limit_and_the_grid_goes_on(tmp_path, cache,
                                                                           cluster):
    config = fast_config(with_explainers('name = "slow"\nparams = { seconds = 30 }',
                                         'name = "random"'))
    executor = DaskExecutor(scheduler=cluster.scheduler_address, cell_timeout=0.5)
    started = time.monotonic()
    summary = run(config, tmp_path / "out", cache, executor=executor)
    assert time.monotonic() - started < 25
    assert summary.n_finished == 1
    [(label, error)] = summary.failures
    assert label == "slow/-/torch:mlp"
    assert "exceeded the cell timeout of 0.5 s; raise --cell-timeout" in error


# --- bad options --------------------------------------------------------------------------------
@pytest.mark.parametrize("name, options, message", [
    ("dask", {"workers": 0}, r"--workers 0 must be a positive integer .*; e\.g\. --workers 2"),
    ("dask", {"workers": 2, "scheduler": "tcp://127.0.0.1:8786"},
     r"--workers starts a local Dask cluster and --scheduler joins one; pass only one"),
    ("dask", {"scheduler": "127.0.0.1"},
     r"--scheduler '127\.0\.0\.1' is not a scheduler address like tcp://HOST:PORT; pass the"),
    ("dask", {"retries": -1}, r"--retries -1 must be an integer >= 0"),
    ("local", {"workers": 2}, r"--workers needs the dask executor; add --executor dask"),
    ("local", {"cell_timeout": 0}, r"--cell-timeout 0 must be a positive number of seconds; "
                                   r"omit it for no limit"),
    ("spark", {}, r"unknown executor 'spark'; choose one of local, dask"),
])
def test_bad_executor_options_are_refused_naming_the_fix(name, options, message):
    with pytest.raises(ConfigError, match=message):
        make_executor(name, **options)


def test_an_unreachable_scheduler_is_named_with_the_fix(tmp_path, cache):
    executor = DaskExecutor(scheduler="tcp://127.0.0.1:9", connect_timeout=1.0)
    with pytest.raises(XaibenchError, match=r"cannot reach the Dask scheduler at "
                                            r"tcp://127\.0\.0\.1:9 .*start one with `dask "
                                            r"scheduler`"):
        run(fast_config(), tmp_path / "out", cache, executor=executor)
