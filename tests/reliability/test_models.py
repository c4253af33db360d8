"""Models and checkpoints: a damaged cached checkpoint is retrained, never loaded; an unwritable
cache costs only the caching; a model that diverges or outputs NaN fails its cells saying so;
``progress=False`` silences the training bars."""

from __future__ import annotations

import json
from contextlib import ExitStack

import numpy as np
import pytest

from xaibench import registry
from xaibench._files import sha256_file
from xaibench.experiment import runner
from xaibench.experiment.checkpoints import CheckpointWarning, checkpoint_path, obtain_model
from xaibench.experiment.config import parse_config
from xaibench.experiment.plan import make_plan
from tests.reliability._runs import read_only
from tests.unit.experiment._tiny import TINY_TOML

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny():
    config = parse_config(TINY_TOML)
    return make_plan(config).models[0], runner.load_dataset(config)


@pytest.fixture
def trained(tiny, tmp_path):
    """The tiny model, trained once into the cache ``tmp_path``, and its checkpoint path."""
    model, dataset = tiny
    first = obtain_model(model, dataset, cache_dir=tmp_path, progress=False)
    assert not first.from_cache
    return first, checkpoint_path(model, tmp_path)


def test_truncated_checkpoint_is_detected_by_hash_and_retrained(tiny, trained, tmp_path,
                                                                monkeypatch):
    model, dataset = tiny
    first, path = trained
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    loads = []
    backend_class = registry.backends.get("torch")
    monkeypatch.setattr(backend_class, "load", lambda self, p: loads.append(p))
    with pytest.warns(CheckpointWarning, match=rf"checkpoint .*{path.name} is not usable: its "
                                               r"SHA-256 does not match .*training the model "
                                               r"again"):
        again = obtain_model(model, dataset, cache_dir=tmp_path, progress=False)
    assert loads == [] and not again.from_cache  # never loaded: retrained
    np.testing.assert_allclose(again.test_scores, first.test_scores, rtol=1e-4, atol=1e-4)
    assert sha256_file(path) == json.loads(path.with_suffix(".json").read_text())["sha256"]


def test_cached_checkpoint_with_nan_weights_is_retrained(tiny, trained, tmp_path):
    """A checkpoint that verifies but holds a diverged model (cached before divergence was
    detected) is not used."""
    model, dataset = tiny
    first, path = trained
    with torch.no_grad():
        first.backend.module.dense.bias.fill_(float("nan"))
    first.backend.save(path)
    sidecar = path.with_suffix(".json")
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()),
                                   "sha256": sha256_file(path)}))
    with pytest.warns(CheckpointWarning, match=r"its weights dense\.bias hold NaN/Inf \(a "
                                               r"diverged training run\); training the model "
                                               r"again"):
        again = obtain_model(model, dataset, cache_dir=tmp_path, progress=False)
    assert not again.from_cache and np.isfinite(again.test_scores).all()


@pytest.mark.parametrize("blocker", ["file", "read-only"])
def test_unwritable_cache_keeps_the_trained_model(tiny, tmp_path, blocker):
    model, dataset = tiny
    cache = tmp_path / "cache"
    with ExitStack() as stack:
        if blocker == "file":
            cache.write_text("not a folder")
        else:
            cache.mkdir()
            stack.enter_context(read_only(cache))
        with pytest.warns(CheckpointWarning, match=rf"cannot write the checkpoint cache {cache}.*"
                                                   r"the trained model is used but not cached.*"
                                                   r"XAIBENCH_CACHE=<a writable directory>"):
            obtained = obtain_model(model, dataset, cache_dir=cache, progress=False)
    assert obtained.record.accuracy > 0.5 and obtained.record.checkpoint is None


# --- through the runner -------------------------------------------------------------------------
def _run(toml: str, out, cache, progress: bool = False) -> runner.RunSummary:
    return runner.run(parse_config(toml), out, progress=progress, cache_dir=cache)


def test_diverging_training_fails_its_cells_and_no_progress_is_silent(tmp_path, capfd):
    toml = TINY_TOML.replace("lr = 1e-2", "lr = 1e12")
    assert toml != TINY_TOML
    summary = _run(toml, tmp_path / "out", tmp_path / "cache")
    assert summary.n_finished == 0 and len(summary.failures) == 2
    for _label, error in summary.failures:
        assert "torch training diverged" in error and "lr = 1e+12" in error
        assert "smaller lr" in error
    assert not list((tmp_path / "cache").rglob("*.ckpt"))  # nothing cached
    assert "torch epoch" not in capfd.readouterr().err  # no training bar
    _run(toml, tmp_path / "again", tmp_path / "cache", progress=True)
    assert "torch epoch 1/1" in capfd.readouterr().err


class _NaNWhenEvaluated(torch.nn.Module):
    """A model that trains normally but outputs NaN in inference mode."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x)
        return out if self.training else out * float("nan")


def test_model_that_outputs_nan_fails_its_cells_saying_so(tmp_path, monkeypatch):
    from backends.zoo import torch_models

    build = torch_models.BUILDERS["fmnist_cnn"]
    monkeypatch.setitem(torch_models.BUILDERS, "fmnist_cnn",
                        lambda spec, **params: _NaNWhenEvaluated(build(spec, **params)))
    summary = _run(TINY_TOML, tmp_path / "out", tmp_path / "cache")
    assert summary.n_finished == 0 and len(summary.failures) == 2
    for _label, error in summary.failures:
        assert "torch model outputs NaN or infinite scores" in error
        assert "smaller lr" in error
