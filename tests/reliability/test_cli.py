"""The command line on bad input: one line ``xaibench: error: ...`` naming the problem and the
fix, exit status 2, and the traceback only with ``--debug``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.reliability._runs import FAST_TOML, read_only
from tests.unit.report._store import build_store, cell_arrays, cell_record, metric_rows
from xaibench.cli import main
from xaibench.experiment.store import Store


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A results directory with a store of finished and failed cells (tests change copies)."""
    root = tmp_path_factory.mktemp("results")
    build_store(root, failed={("keras", "permutation")}, extras=False)
    return root


@pytest.fixture
def copy(results, tmp_path) -> Path:
    return Path(shutil.copytree(results, tmp_path / "results"))


def _fails(argv: list[str], capsys) -> str:
    """Run the CLI expecting exit status 2; its one line of stderr."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.mark.parametrize("formats", [",", " , ", ""])
def test_report_with_no_format_lists_the_valid_ones(copy, capsys, formats):
    assert _fails(["report", str(copy), "--format", formats], capsys) == (
        "xaibench: error: no report format given; choose one or more of md, csv, tex, html "
        "(comma-separated, e.g. --format md,csv)")
    assert not (copy / "report.md").exists()


def test_report_with_an_unknown_format_suggests_one(copy, capsys):
    assert _fails(["report", str(copy), "--format", "md,htm"], capsys) == (
        "xaibench: error: unknown report format 'htm' — did you mean 'html'? (known: md, csv, "
        "tex, html)")


def test_screenshot_without_html_fails_before_rendering(copy, capsys):
    line = _fails(["report", str(copy), "--format", "md", "--screenshot", "x.png"], capsys)
    assert line.endswith("--screenshot needs the html format; add html to --format md")
    assert not (copy / "report.md").exists()


@pytest.mark.parametrize("command", ["report", "compare"])
def test_report_and_compare_on_a_missing_or_empty_directory(tmp_path, capsys, command):
    missing, empty = tmp_path / "missing", tmp_path / "empty"
    empty.mkdir()
    others = [str(empty)] if command == "compare" else []
    assert _fails([command, str(missing), *others], capsys) == (
        f"xaibench: error: results directory {missing} does not exist; run `xaibench run "
        f"CONFIG --output {missing}` first")
    assert _fails([command, str(empty), *others], capsys) == (
        f"xaibench: error: {empty} holds no results store (store.sqlite); run `xaibench run "
        f"CONFIG --output {empty}` first")


def test_compare_of_unrelated_runs_says_nothing_matched(results, tmp_path, capsys):
    other = Store(tmp_path / "other")  # another dataset: no configuration in common
    gaps = np.zeros((4, 2))
    other.put_cell(cell_record("torch", "deep", None, {}, dataset="cifar10"),
                   cell_arrays(gaps, (8, 8, 3), seed=0), metric_rows(gaps, 0.3, 0.2, 0.1))
    line = _fails(["compare", str(results), str(tmp_path / "other")], capsys)
    assert line == (f"xaibench: error: nothing to compare: {results} (5 finished cell(s) "
                    f"of digits) and {tmp_path / 'other'} (1 finished cell(s) of cifar10) share "
                    f"no finished configuration with a metric; compare two runs of one "
                    f"experiment (e.g. another seed or version)")


def test_report_on_a_corrupt_store_is_one_line_and_debug_shows_the_traceback(copy, capsys):
    (copy / "store.sqlite").write_bytes(b"garbage" * 1000)
    line = _fails(["report", str(copy)], capsys)
    assert line == (f"xaibench: error: {copy}/store.sqlite: file is not a database; move it "
                    f"away, or start afresh with `xaibench run CONFIG --output {copy} "
                    f"--replace` (discards its results)")
    for argv in (["--debug", "report", str(copy)], ["report", str(copy), "--debug"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and "DataError" in err
        assert err.strip().splitlines()[-1] == line


def test_report_naming_a_missing_arrays_file_and_the_fix(copy, capsys):
    key = sorted(Store(copy).done_keys())[0]
    (copy / "arrays" / f"{key}.npz").unlink()
    line = _fails(["report", str(copy), "--format", "md"], capsys)
    assert line.startswith("xaibench: error: arrays of cell ")
    assert line.endswith(f"{key}.npz is missing; `xaibench run CONFIG --output {copy}` "
                         f"recomputes them")


def test_report_into_a_read_only_directory(copy, capsys):
    with read_only(copy):
        line = _fails(["report", str(copy), "--format", "md"], capsys)
    assert line.startswith(f"xaibench: error: cannot write the report file {copy}/")
    assert line.endswith(f": Permission denied; make {copy} writable") or \
        line.endswith(f": Operation not permitted; make {copy} writable")


def test_report_of_an_interrupted_run_warns_that_it_is_partial(tmp_path, capsys):
    Store(tmp_path).set_meta("status", "running")  # and nobody holds the lock: killed
    assert main(["report", str(tmp_path), "--format", "md"]) == 0
    assert capsys.readouterr().err == (
        f"xaibench: note: the last run (pid unknown) was killed before it finished: the "
        f"results are partial; `xaibench run CONFIG --output {tmp_path}` resumes it\n")
    assert "- status: interrupted — the last run" in (tmp_path / "report.md").read_text()


def test_an_unexpected_exception_is_one_line_with_a_hint_and_debug_raises(copy, capsys,
                                                                          monkeypatch):
    from xaibench import report

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(report, "render", broken)
    assert _fails(["report", str(copy)], capsys) == (
        "xaibench: error: unexpected ZeroDivisionError: division by zero (run with --debug for "
        "the traceback)")
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "report", str(copy)])


def test_run_of_an_edited_config_into_the_same_output_is_one_line(tmp_path, capsys):
    pytest.importorskip("torch")
    config = tmp_path / "fast.toml"
    config.write_text(FAST_TOML)
    out = tmp_path / "out"
    Store(out).put_cell(cell_record("torch", "deep", None, {}), {"values": np.zeros(1)})
    line = _fails(["run", str(config), "--output", str(out), "--no-progress"], capsys)
    assert line.startswith(f"xaibench: error: {out} holds 1 cell(s) and 0 model(s) of another "
                           f"configuration (differs in: unknown: the store records no resolved "
                           f"config); choose another --output, or pass --replace")


def test_run_into_a_file_is_one_line(tmp_path, capsys):
    config, target = tmp_path / "fast.toml", tmp_path / "file"
    config.write_text(FAST_TOML)
    target.write_text("")
    assert _fails(["run", str(config), "--output", str(target)], capsys) == (
        f"xaibench: error: results directory {target} is a file, not a directory; choose "
        f"another --output")
