"""The checkpoint cache: trained once, reused verified, corruption detected and retrained."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from xaibench import registry
from xaibench.errors import XaibenchError
from xaibench.experiment.checkpoints import (CheckpointWarning, cache_root, checkpoint_path,
                                             copy_model, evaluate, obtain_model)
from xaibench.experiment.config import parse_config
from xaibench.experiment.plan import make_plan
from xaibench.experiment.runner import load_dataset
from tests.unit.experiment._tiny import TINY_TOML


def test_cache_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("XAIBENCH_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "b"))
    assert cache_root() == tmp_path / "a"
    monkeypatch.delenv("XAIBENCH_CACHE")
    assert cache_root() == tmp_path / "b" / "xaibench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "xaibench"


def test_evaluate_reports_accuracy_classes_and_confusion():
    scores = np.array([[2, 1, 0], [0, 3, 1], [0, 1, 2], [5, 0, 0]], dtype=np.float32)
    result = evaluate(np.array([0, 1, 1, 2]), scores, ("a", "b", "c"))
    assert result["accuracy"] == 0.5 and result["n_test"] == 4
    assert result["confusion_matrix"] == [[1, 0, 0], [0, 1, 1], [1, 0, 0]]
    assert result["per_class"]["b"]["recall"] == 0.5
    assert result["per_class"]["c"]["support"] == 1


@pytest.fixture(scope="module")
def tiny():
    pytest.importorskip("torch")
    config = parse_config(TINY_TOML)
    return make_plan(config).models[0], load_dataset(config)


class _FitCounter:
    """Counts calls of the torch backend's fit (wrapping the real one)."""

    def __init__(self, monkeypatch):
        backend_class = registry.backends.get("torch")
        original = backend_class.fit
        self.calls = 0

        def fit(backend, *args, **kwargs):
            self.calls += 1
            return original(backend, *args, **kwargs)

        monkeypatch.setattr(backend_class, "fit", fit)


def test_trains_once_then_loads_the_verified_checkpoint(tiny, tmp_path, monkeypatch):
    model, dataset = tiny
    fits = _FitCounter(monkeypatch)
    first = obtain_model(model, dataset, cache_dir=tmp_path)
    assert fits.calls == 1 and not first.from_cache
    path = checkpoint_path(model, tmp_path)
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["model"]["key"] == model.key and len(sidecar["sha256"]) == 64
    assert first.record.model_key == model.key
    assert first.record.train_params == {**model.train, "n_train": 300}
    assert first.record.accuracy > 0.5  # 10 digit classes: chance is 0.1
    assert first.record.evaluation["from_cache"] is False

    second = obtain_model(model, dataset, cache_dir=tmp_path)
    assert fits.calls == 1 and second.from_cache
    np.testing.assert_array_equal(second.test_scores, first.test_scores)
    assert second.record.train_seconds == first.record.train_seconds
    assert second.record.evaluation["from_cache"] is True


@pytest.mark.parametrize("damage", ["flip_byte", "drop_sidecar", "other_model"])
def test_bad_checkpoint_is_never_used(tiny, tmp_path, monkeypatch, damage):
    model, dataset = tiny
    first = obtain_model(model, dataset, cache_dir=tmp_path)
    path = checkpoint_path(model, tmp_path)
    sidecar = path.with_suffix(".json")
    if damage == "flip_byte":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "drop_sidecar":
        sidecar.unlink()
    else:
        content = json.loads(sidecar.read_text())
        content["model"]["seed"] += 1
        sidecar.write_text(json.dumps(content))

    fits = _FitCounter(monkeypatch)
    with pytest.warns(CheckpointWarning, match=str(path.name)):
        again = obtain_model(model, dataset, cache_dir=tmp_path)
    assert fits.calls == 1 and not again.from_cache
    # retrained with the same seed: the same model, and the rewritten checkpoint verifies
    np.testing.assert_allclose(again.test_scores, first.test_scores, rtol=1e-4, atol=1e-4)
    assert obtain_model(model, dataset, cache_dir=tmp_path).from_cache


def test_copy_must_reproduce_its_sources_scores(tiny, tmp_path):
    pytest.importorskip("flax")
    model, dataset = tiny
    copy_toml = TINY_TOML.replace("[[explainers]]", '[[models]]\nbackend = "flax"\n'
                                  'architecture = "fmnist_cnn"\nweights_from = "torch"\n\n'
                                  "[[explainers]]", 1)
    source_plan, copy_plan = make_plan(parse_config(copy_toml)).models
    assert source_plan == model
    source = obtain_model(model, dataset, cache_dir=tmp_path)
    copied = copy_model(copy_plan, source, dataset)
    assert copied.record.evaluation["copy_max_abs_diff"] < 1e-5
    assert copied.record.accuracy == source.record.accuracy
    assert list(tmp_path.rglob("*.ckpt")) == [checkpoint_path(model, tmp_path)]  # not cached
    shifted = replace(source, test_scores=source.test_scores + 1e-3)
    with pytest.raises(XaibenchError, match=r"flax:fmnist_cnn with the weights of "
                                            r"torch:fmnist_cnn does not reproduce its test "
                                            r"scores: max \|difference\| 0\.001"):
        copy_model(copy_plan, shifted, dataset)
