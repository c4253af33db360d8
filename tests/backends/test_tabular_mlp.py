"""The tabular_mlp zoo architecture on tabular rows (1, F, 1): regression training in every
framework (mean squared error; R² on diabetes), the same network in torch, Keras and Flax
(weights copy -> same predictions) and DeepLIFT additive and equal across frameworks.

Margins measured on diabetes with 10 epochs, batch 32, lr 1e-2, seeds 0 / 1 / 2: test R² torch
0.345 / 0.378 / 0.351, flax 0.192 / 0.349 / 0.301, keras 0.274 / 0.306 / 0.245 (predicting the
training mean gives R² <= 0); last-over-first epoch loss at most 0.57.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from xaibench.data import breast_cancer, diabetes  # noqa: E402
from xaibench.experiment.checkpoints import evaluate  # noqa: E402

FRAMEWORKS = {"torch": "backends.torch_backend:TorchBackend",
              "flax": "backends.flax_backend:FlaxBackend",
              "keras": "backends.keras_backend:KerasBackend"}
_REQUIRES = {"torch": "torch", "flax": "flax", "keras": "tensorflow"}


def backend_class(framework: str):
    pytest.importorskip(_REQUIRES[framework])
    import importlib

    module, _, name = FRAMEWORKS[framework].partition(":")
    return getattr(importlib.import_module(module), name)


@pytest.fixture(scope="module")
def table():
    return diabetes.load()


@pytest.fixture(scope="module")
def trained(table, test_seed):
    """A torch tabular_mlp trained as the regression test trains it."""
    backend = backend_class("torch").from_zoo("tabular_mlp", table.spec, seed=test_seed)
    backend.fit(table.x_train, table.y_train, epochs=10, batch_size=32, lr=1e-2,
                seed=test_seed, progress=False)
    return backend


@pytest.mark.parametrize("framework", ["torch", "flax", "keras"])
def test_regression_training_reaches_a_positive_r2(framework, table, test_seed, trained):
    if framework == "torch":
        backend = trained
        history = None
    else:
        backend = backend_class(framework).from_zoo("tabular_mlp", table.spec, seed=test_seed)
        options = {"validation_fraction": 0.0} if framework == "keras" else {}
        history = backend.fit(table.x_train, table.y_train, epochs=10, batch_size=32, lr=1e-2,
                              seed=test_seed, progress=False, **options)
        assert "accuracy" not in history and history["loss"][-1] < 0.75 * history["loss"][0]
    evaluation = evaluate(table.y_test, backend.predict(table.x_test), table.class_names,
                          task="regression", target_scale=table.target_scale)
    assert evaluation["task"] == "regression" and evaluation["r2"] > 0.1, evaluation
    assert evaluation["rmse_original"] == pytest.approx(evaluation["rmse"]
                                                        * table.target_scale[1])


def test_torch_regression_history_is_mse(table, test_seed):
    backend = backend_class("torch").from_zoo("tabular_mlp", table.spec, seed=test_seed)
    expected = float(np.mean((backend.predict(table.x_train)[:, 0] - table.y_train) ** 2))
    history = backend.fit(table.x_train, table.y_train, epochs=1, batch_size=len(table.x_train),
                          lr=1e-12, seed=0, progress=False)
    assert set(history) == {"loss"} and history["loss"][0] == pytest.approx(expected, rel=1e-5)


def test_regression_needs_float_targets(table):
    backend = backend_class("torch").from_zoo("tabular_mlp", table.spec, seed=0)
    from xaibench.errors import XaibenchError

    with pytest.raises(XaibenchError, match=r"must hold 331 finite float32 regression targets; "
                                            r"got int64"):
        backend.fit(table.x_train, table.y_train.astype(np.int64), epochs=1, batch_size=32,
                    lr=1e-3, seed=0, progress=False)


def test_layers_follow_the_course_mlp():
    spec = diabetes.load(n_test=2).spec
    module = backend_class("torch").from_zoo("tabular_mlp", spec, seed=0).module
    linear = [(name, m.in_features, m.out_features) for name, m in module.named_modules()
              if isinstance(m, torch.nn.Linear)]
    assert linear == [("dense1", 10, 10), *[(f"dense{i}", 10, 10) for i in range(2, 6)],
                      ("head", 10, 1)]
    relus = [m for m in module.modules() if isinstance(m, torch.nn.ReLU)]
    assert len({id(m) for m in relus}) == 5 and not any(m.inplace for m in relus)
    from xaibench.errors import ConfigError
    with pytest.raises(ConfigError, match="tabular_mlp depth must be a positive integer"):
        backend_class("torch").from_zoo("tabular_mlp", spec, depth=0)


@pytest.mark.parametrize("framework", ["flax", "keras"])
@pytest.mark.parametrize("loader", [diabetes, breast_cancer], ids=["diabetes", "breast_cancer"])
def test_weights_copy_across_frameworks(framework, loader):
    data = loader.load(n_train=40)
    source = backend_class("torch").from_zoo("tabular_mlp", data.spec, seed=3, width=7, depth=3)
    target = backend_class(framework).from_zoo("tabular_mlp", data.spec, seed=4, width=7,
                                               depth=3)
    assert not np.allclose(target.predict(data.x_test), source.predict(data.x_test), atol=1e-3)
    target.set_weights(source.get_weights())
    np.testing.assert_allclose(target.predict(data.x_test), source.predict(data.x_test),
                               atol=1e-5)
    assert sorted(target.get_weights()) == ["dense1", "dense2", "dense3", "head"]


@pytest.mark.parametrize("framework", ["torch", "flax", "keras"])
def test_deep_is_additive_on_rows_and_equal_across_frameworks(framework, trained, table):
    x, background = table.x_test[:4], table.x_train[:50]
    backend = trained
    if framework != "torch":
        backend = backend_class(framework).from_zoo("tabular_mlp", table.spec, seed=9)
        backend.set_weights(trained.get_weights())
    attribution = backend.explain("deep", x, 1, background=background)
    assert attribution.values.shape == (4, 1, 10, 1, 1)
    assert attribution.additivity_gap().max() < 1e-4
    reference = trained.explain("deep", x, 1, background=background)
    np.testing.assert_allclose(attribution.values, reference.values,
                               atol=1e-4 * np.abs(reference.values).max())
