"""The ``xaibench`` command line, run as a user would (a separate process)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.experiment._tiny import TINY_TOML

ROOT = Path(__file__).resolve().parents[2]


def xaibench(*args: str, cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "XAIBENCH_CACHE": str(cache),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "xaibench.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_list_is_fast_and_imports_no_framework():
    code = ("import sys; from xaibench.cli import main; main(['list']); "
            "print(sorted({'torch', 'tensorflow', 'jax', 'shap'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "[]", "xaibench list imported a framework"
    assert "explainers:" in lines and any(line.split()[:1] == ["partition"] for line in lines)
    assert any(line.split()[:1] == ["torch"] and "[torch: " in line for line in lines)


def test_validate_and_config_errors(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text(TINY_TOML)
    done = xaibench("validate", str(good), cwd=tmp_path, cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    assert "valid — 1 model(s), 2 cell(s)" in done.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text(TINY_TOML.replace('name = "partition"', 'name = "partion"'))
    done = xaibench("run", str(bad), cwd=tmp_path, cache=tmp_path / "cache")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"xaibench: error: {bad}: [[explainers]] #1: unknown explainer 'partion' — did you mean "
        "'partition' or 'permutation'? (known: cam, deep, edge, gradcam, gradcam_pp, gradient, "
        "partition, permutation, random, tree)"]
    assert not (tmp_path / "results").exists(), "a failed validation must not start a run"


def test_run_then_resume_then_report(tmp_path):
    pytest.importorskip("torch")
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    cache = tmp_path / "cache"

    first = xaibench("run", str(config), "--no-progress", cwd=tmp_path, cache=cache)
    assert first.returncode == 0, first.stderr
    assert "done partition/blur(3,3)/torch:fmnist_cnn: 2 images" in first.stdout
    assert "done deep/-/torch:fmnist_cnn: 2 images" in first.stdout
    assert "2 cells finished, 0 failed, 0 already done (of 2)" in first.stdout
    store = tmp_path / "results" / "tiny" / "store.sqlite"  # output relative to the cwd
    with sqlite3.connect(store) as con:
        assert con.execute("SELECT status, COUNT(*) FROM cells GROUP BY status").fetchall() \
            == [("done", 2)]
    assert len(list(cache.glob("checkpoints/*.ckpt"))) == 1

    second = xaibench("run", str(config), "--no-progress", cwd=tmp_path, cache=cache)
    assert second.returncode == 0, second.stderr
    assert "0 cells finished, 0 failed, 2 already done (of 2)" in second.stdout

    report = xaibench("report", str(store.parent), "--format", "csv", cwd=tmp_path, cache=cache)
    assert report.returncode == 0, report.stderr
    assert (store.parent / "report.csv").is_file()
    missing = xaibench("report", str(tmp_path / "nothing"), cwd=tmp_path, cache=cache)
    assert missing.returncode == 2 and "nothing does not exist; run `xaibench run" in missing.stderr


def test_data_fetch_calls_the_dataset_fetcher(tmp_path, monkeypatch, capsys):
    from xaibench.cli import main
    from xaibench.data import fashion_mnist

    calls = []
    monkeypatch.setattr(fashion_mnist, "fetch", lambda dest=None: calls.append(dest) or tmp_path)
    assert main(["data", "fetch", "fashion-mnist", "--dest", str(tmp_path)]) == 0
    assert calls == [tmp_path] and str(tmp_path) in capsys.readouterr().out
    assert main(["data", "fetch", "digits"]) == 2
    assert capsys.readouterr().err.strip() == \
        "xaibench: error: dataset 'digits' has no files to fetch"
    assert main(["data", "fetch", "fashion-mnst"]) == 2
    assert "did you mean 'fashion_mnist'" in capsys.readouterr().err
