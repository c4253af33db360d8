"""Runs lose nothing and pool nothing stale: data and config changes, damaged arrays, bad
output directories, concurrent runs, and runs killed by SIGKILL, SIGINT and SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from tests.reliability._runs import (FAST_TOML, N_CELLS, N_IMAGES, assert_every_cell_once,
                                     fast_config, read_only, run)
from xaibench.errors import ConfigError, DataError
from xaibench.experiment import runner
from xaibench.experiment.store import Store, locked
from xaibench.report import summary_table
from xaibench.report.tables import Results

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, cache):
    """A finished run of the fast experiment (tests damage copies of it)."""
    out = tmp_path_factory.mktemp("finished") / "out"
    run(fast_config(), out, cache)
    return out


@pytest.fixture
def done(finished, tmp_path):
    """A copy of the finished run."""
    return Path(shutil.copytree(finished, tmp_path / "out"))


# --- the data and the config identify the results -----------------------------------------------
IMAGE_FOLDER_TOML = FAST_TOML.replace('''name = "digits"
n_train = 200''', '''name = "image_folder"
params = { root = "ROOT", size = 8, grayscale = true }''')


def _write_images(folder: Path, seed: int) -> None:
    """Three classes of ten 8x8 grey PNGs, pixels drawn from ``seed`` (same file names)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name in ("a", "b", "c"):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(10):
            pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i}.png")


def test_replaced_images_are_refused_then_retrained_never_served_from_the_old_model(
        tmp_path, cache, capsys):
    folder, out = tmp_path / "images", tmp_path / "out"
    _write_images(folder, seed=0)
    config = fast_config(IMAGE_FOLDER_TOML.replace("ROOT", str(folder)))
    run(config, out, cache)
    _write_images(folder, seed=1)
    with pytest.raises(ConfigError, match=r"holds 3 cell\(s\) and 1 model\(s\) of another "
                                          r"configuration "
                                          r"\(differs in: the data's content\); choose another "
                                          r"--output, or pass --replace"):
        run(config, out, cache)
    capsys.readouterr()
    summary = run(config, out, cache, replace=True)
    assert (summary.n_finished, summary.n_skipped) == (N_CELLS, 0)
    printed = capsys.readouterr().out
    assert "trained in" in printed and "cached checkpoint" not in printed
    assert_every_cell_once(config, out)


def test_edited_config_is_refused_naming_what_differs_and_the_store_is_untouched(done, cache):
    before = Store(done).frame("cells")
    edited = fast_config(FAST_TOML.replace('metrics = ["additivity"]',
                                           'metrics = ["additivity", "gini"]'))
    with pytest.raises(ConfigError, match=r"of another configuration \(differs in: metrics\); "
                                          r"choose another --output, or pass --replace"):
        run(edited, done, cache)
    reseeded = fast_config(FAST_TOML.replace("seed = 1", "seed = 2"))
    with pytest.raises(ConfigError, match=r"differs in: seed\)"):
        run(reseeded, done, cache)
    store = Store(done)
    assert store.frame("cells").equals(before) and store.get_meta("status") == "finished"


def test_replace_discards_the_old_cells_so_the_report_counts_each_image_once(done, cache):
    edited = fast_config(FAST_TOML.replace('metrics = ["additivity"]',
                                           'metrics = ["additivity", "gini"]'))
    summary = run(edited, done, cache, replace=True)
    assert (summary.n_finished, summary.n_skipped) == (N_CELLS, 0)
    table = summary_table(Results.load(done))
    assert list(table["images"]) == [N_IMAGES] * N_CELLS and list(table["cells"]) == [1] * N_CELLS
    assert "gini_mean" in table


def test_an_added_explainer_resumes_without_touching_the_done_cells(done, cache):
    grown = fast_config(FAST_TOML + '\n[[explainers]]\nname = "random"\ntargets = 4\n')
    summary = run(grown, done, cache)
    assert (summary.n_finished, summary.n_skipped) == (1, N_CELLS)


# --- arrays of finished cells ---------------------------------------------------------------------
@pytest.mark.parametrize("damage, problem", [
    (Path.unlink, "is missing"),
    (lambda path: path.write_bytes(path.read_bytes()[:-7] + b"garbage"),
     "does not match its SHA-256"),
])
def test_missing_or_changed_arrays_are_named_by_the_report_and_recomputed_by_run(
        done, cache, capsys, damage, problem):
    store = Store(done)
    key = sorted(store.done_keys())[0]
    original = store.load_arrays(key)
    damage(done / "arrays" / f"{key}.npz")
    with pytest.raises(DataError, match=rf"arrays of cell random/-/torch:mlp: .*{key}\.npz "
                                        rf"{problem}.*; `xaibench run CONFIG --output {done}` "
                                        r"recomputes them"):
        Results.load(done).store.load_arrays(key)
    capsys.readouterr()
    summary = run(fast_config(), done, cache)
    assert (summary.n_finished, summary.n_skipped) == (1, N_CELLS - 1)
    assert "note: computing again the arrays of random/-/torch:mlp: " in capsys.readouterr().out
    np.testing.assert_array_equal(store.load_arrays(key)["values"], original["values"])
    assert_every_cell_once(fast_config(), done)


# --- the output directory -------------------------------------------------------------------------
@pytest.fixture
def no_data(monkeypatch):
    """Loading data fails the test: output errors must come first."""
    monkeypatch.setattr(runner, "load_dataset", lambda config: pytest.fail("data was loaded"))


def test_output_that_is_a_file_is_refused_before_loading_data(tmp_path, no_data):
    target = tmp_path / "results.txt"
    target.write_text("not a directory")
    with pytest.raises(DataError, match=r"results directory .*results.txt is a file, not a "
                                        r"directory; choose another --output"):
        runner.run(fast_config(), target, progress=False)


@pytest.fixture
def read_only_dir(tmp_path):
    folder = tmp_path / "read_only"
    folder.mkdir()
    with read_only(folder):
        yield folder


def test_read_only_output_is_refused_before_loading_data(read_only_dir, no_data):
    for out in (read_only_dir, read_only_dir / "new"):
        with pytest.raises(DataError, match=r"cannot write to results directory .*read_only.*: "
                                            r".*; make .* writable or choose another --output"):
            runner.run(fast_config(), out, progress=False)


# --- concurrency and signals ----------------------------------------------------------------------
def test_a_second_run_on_a_directory_in_use_is_refused_naming_the_holder(tmp_path, no_data):
    out = tmp_path / "out"
    out.mkdir()
    with locked(out):
        with pytest.raises(DataError, match=rf"{out} is in use by another xaibench run \(pid "
                                            rf"{os.getpid()}\); wait for it to finish or choose "
                                            r"another --output"):
            runner.run(fast_config(), out, progress=False)


def test_a_second_run_while_one_runs_is_refused_naming_its_pid(tmp_path, cache):
    out = tmp_path / "out"

    def second_run(pid: int) -> None:
        with pytest.raises(DataError, match=rf"{out} is in use by another xaibench run \(pid "
                                            rf"{pid}\); wait for it to finish or choose "
                                            r"another --output"):
            run(fast_config(), out, cache)

    _killed_after_first_cell(out, cache, tmp_path, signal.SIGKILL, meanwhile=second_run)
    assert len(Store(out).done_keys()) == 1, "the refused run computed nothing"


#: the CLI with run_cell gated: the first cell runs, the next ones wait to be killed. Ctrl-C's
#: handler is Python's own, as in a terminal: a test suite started in the background by
#: ``sh -c '... &'`` or nohup inherits SIGINT ignored, and Python then installs none
GATED_CLI = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from xaibench.experiment import runner
real = runner.run_cell
def gated(cell, *args, **kwargs):
    if gated.ran:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.02)
    gated.ran = True
    return real(cell, *args, **kwargs)
gated.ran = False
runner.run_cell = gated
from xaibench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _killed_after_first_cell(out: Path, cache: Path, tmp_path: Path, sig: signal.Signals,
                             meanwhile: Callable[[int], None] = lambda pid: None,
                             ) -> subprocess.CompletedProcess:
    """Run the fast experiment in a process and send it ``sig`` once its first cell is done
    (and ``meanwhile(its pid)`` has returned)."""
    config = tmp_path / "fast.toml"
    config.write_text(FAST_TOML)
    env = {**os.environ, "XAIBENCH_CACHE": str(cache), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen([sys.executable, "-c", GATED_CLI, "run", str(config), "--output",
                                str(out), "--no-progress"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("done "):
            try:
                meanwhile(process.pid)
            finally:
                process.send_signal(sig)
            break
    stdout, stderr = process.communicate(timeout=60)
    assert any(line.startswith("done ") for line in lines), stderr
    return subprocess.CompletedProcess(process.args, process.returncode, "".join(lines) + stdout,
                                       stderr)


def _resumed(out: Path, cache: Path) -> runner.RunSummary:
    summary = run(fast_config(), out, cache)
    assert (summary.n_finished, summary.n_skipped, summary.failures) == \
        (N_CELLS - 1, 1, ()), "the rerun computes exactly the cells the killed run had not"
    assert_every_cell_once(fast_config(), out)
    return summary


def test_sigkill_mid_run_then_rerun_says_so_and_runs_every_cell_exactly_once(
        tmp_path, cache, capsys):
    out = tmp_path / "out"
    killed = _killed_after_first_cell(out, cache, tmp_path, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    store = Store(out)
    assert store.get_meta("status") == "running" and store.run_status() == "interrupted"
    assert len(store.done_keys()) == 1
    capsys.readouterr()
    _resumed(out, cache)  # the dead run's lock does not block
    pid = store.get_meta("pid")
    assert "was interrupted before it finished; resuming" in capsys.readouterr().out
    assert pid == os.getpid() and store.run_status() == "finished"


@pytest.mark.parametrize("sig, status, message", [
    (signal.SIGINT, 130, "xaibench: interrupted (finished cells are stored; run again to "
                         "resume)"),
    (signal.SIGTERM, 143, "xaibench: terminated by SIGTERM (finished cells are stored; run "
                          "again to resume)"),
])
def test_interrupted_run_is_aborted_keeps_its_cells_and_resumes(tmp_path, cache, sig, status,
                                                                message):
    out = tmp_path / "out"
    stopped = _killed_after_first_cell(out, cache, tmp_path, sig)
    assert stopped.returncode == status, stopped.stderr
    assert stopped.stderr.strip().splitlines()[-1] == message
    store = Store(out)
    assert store.run_status() == "aborted" and len(store.done_keys()) == 1
    _resumed(out, cache)


def test_replace_starts_afresh_over_a_store_that_is_not_a_database(tmp_path, cache):
    out = tmp_path / "out"
    out.mkdir()
    (out / "store.sqlite").write_text("not a database\n" * 100)
    summary = run(fast_config(), out, cache, replace=True)
    assert (summary.n_finished, summary.failures) == (N_CELLS, ())
    assert_every_cell_once(fast_config(), out)
