"""experiments/cifar10.toml runs end to end on generated CIFAR-10 batch files (the real data is
not needed): reduced to the width-1 torch models (nn.ReLU and the tutorial's F.relu), one epoch and small
budgets, with the 10-class deep panel."""

from __future__ import annotations

import pickle
import tomllib
from pathlib import Path

import numpy as np
import pytest

from xaibench.data import cifar10

pytest.importorskip("torch")

EXPERIMENT = Path(__file__).parents[2] / "experiments" / "cifar10.toml"


def write_generated_cifar(root: Path, per_batch: int = 20) -> None:
    """Official-format batches under ``root/cifar-10/cifar-10-batches-py``: each class a
    colour tint plus noise."""
    folder = root / cifar10.FOLDER / cifar10.BATCHES
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in cifar10.FILES[:-1]:
        labels = rng.integers(0, 10, per_batch)
        tint = np.stack([labels * 25, 250 - labels * 25, (labels % 3) * 100], axis=1)
        images = np.clip(tint[:, :, None] + rng.normal(0, 30, (per_batch, 3, 1024)), 0, 255)
        (folder / name).write_bytes(pickle.dumps(
            {b"data": images.astype(np.uint8).reshape(per_batch, 3072),
             b"labels": labels.tolist()}, protocol=2))
    (folder / cifar10.META_FILE).write_bytes(pickle.dumps(
        {b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog",
                          b"horse", b"ship", b"truck"]}, protocol=2))


def test_cifar10_experiment_on_generated_files(tmp_path, monkeypatch, cache):
    import xaibench

    write_generated_cifar(tmp_path / "data")
    monkeypatch.setenv("XAIBENCH_DATA", str(tmp_path / "data"))
    config = tomllib.loads(EXPERIMENT.read_text())
    config.update(output=str(tmp_path / "results"), metrics=["additivity"])
    config["dataset"].update(params={"n_test": 20}, n_background=5)
    config["images"] = {"first": 1}
    module, functional = config["models"][:2]
    assert functional["architecture"] == "cifar_convnet_functional"
    config["models"] = [{**model, "params": {"width": 1},
                         "train": {"epochs": 1, "batch_size": 32, "lr": 1e-3}}
                        for model in (module, functional)]
    deep = config["explainers"][0]
    partition = {**config["explainers"][1], "maskers": ["constant(0.5)"],
                 "params": {"max_evals": 40}}
    config["explainers"] = [deep, partition]
    results = xaibench.run(config, progress=False, cache_dir=cache)
    assert not results.summary.failures
    cells = results.cells.set_index(["explainer", "architecture"])
    deep_cell = cells.loc[("deep", "cifar_convnet")]
    attribution = results.attribution(deep_cell["cell_key"])
    assert attribution.values.shape == (1, 32, 32, 3, 10)  # the 10-class panel
    assert sorted(attribution.output_indices[0]) == list(range(10))
    assert attribution.additivity_gap().max() < 1e-3
    # the tutorial's F.relu: the same function, but deep's attributions do not add up
    tutorial = results.attribution(cells.loc[("deep", "cifar_convnet_functional")]["cell_key"])
    assert np.median(tutorial.additivity_gap()) > 100 * attribution.additivity_gap().max()
    names = results.explanation(deep_cell["cell_key"]).output_names
    assert sorted(names) == sorted(["airplane", "automobile", "bird", "cat", "deer", "dog",
                                    "frog", "horse", "ship", "truck"])
