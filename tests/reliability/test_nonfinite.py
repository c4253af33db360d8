"""Non-finite values and malformed specs are errors that say what was non-finite, where, and what to do.

Covers images (NaN/Inf pixels, values outside the declared range), model outputs, target
selection, attributions and training (NaN loss or weights), with real (tiny) models.
"""

from __future__ import annotations

import numpy as np
import pytest

from xaibench import ImageSpec
from xaibench.backend import resolve_targets
from xaibench.errors import TrainingDivergedError, XaibenchError

SPEC = ImageSpec(shape=(6, 6, 1), class_names=("a", "b", "c"))
NAN_SCORES = r"outputs NaN or infinite scores .* smaller lr"
#: lr = 1e12 makes fmnist_cnn overflow in its first epoch in every framework (3 seeds checked)
DIVERGED = (r"training diverged: the loss is (nan|inf) in epoch 1 of {epochs} with lr = 1e\+12; "
            r"train with a smaller lr")


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *SPEC.shape), dtype=np.float32)


def labelled(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return images(n, seed), np.random.default_rng(seed).integers(0, SPEC.n_classes, n)


# --- images -------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_pixels_are_rejected_naming_count_and_image(bad):
    x = images(5)
    x[3, 1, 2, 0] = x[4, 0, 0, 0] = bad
    with pytest.raises(XaibenchError, match=r"2 pixel values are NaN or infinite, in 2 of 5 "
                                            r"images \(first: image 3\).*repair or drop"):
        SPEC.check(x)


def test_pixels_outside_the_declared_range_are_rejected_with_the_fix():
    x = images(4) * 255  # 8-bit values declared as [0, 1]
    with pytest.raises(XaibenchError, match=r"outside the declared value range \[0, 1\] .*"
                                            r"in 4 of 4 images \(first: image 0\).*divide by 255"):
        SPEC.check(x)
    x = images(4)
    x[2, 0, 0, 0] = -0.5
    with pytest.raises(XaibenchError, match=r"1 pixel values lie outside .* span \[-0\.5, "
                                            r".*first: image 2.*value_range="):
        SPEC.check(x)


def test_round_off_and_a_declared_range_are_accepted():
    x = images(2)
    x[0, 0, 0, 0], x[1, 0, 0, 0] = 1 + 1e-5, -1e-5
    np.testing.assert_array_equal(SPEC.check(x), x)
    wide = ImageSpec(SPEC.shape, SPEC.class_names, value_range=(-1.0, 255.0))
    assert wide.check(x * 255 - 1).dtype == np.float32
    assert SPEC.check(np.zeros((0, *SPEC.shape))).shape == (0, *SPEC.shape)


def test_resolve_targets_never_picks_a_class_from_nan_scores():
    scores = np.array([[0.1, 0.5, 0.2], [np.nan, np.nan, np.nan]])
    with pytest.raises(XaibenchError, match=r"top-1 classes: the scores are NaN or infinite "
                                            r"for 1 of 2 images \(first: image 1\)"):
        resolve_targets(scores, 1)
    np.testing.assert_array_equal(resolve_targets(scores, [1, 2]), [[1], [2]])  # explicit


# --- torch models ---------------------------------------------------------------------------------
torch = pytest.importorskip("torch")
nn = torch.nn


class _LogOfMeanMinusHalf(nn.Module):
    """Scores log(mean(x) - 0.5) + w: NaN exactly for the images darker than 0.5 on average."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.arange(3, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(x.mean(dim=(1, 2, 3)) - 0.5)[:, None] + self.weight


class _SqrtLinear(nn.Module):
    """A linear model of sqrt(pixels): finite outputs, infinite gradients at 0."""

    def __init__(self) -> None:
        super().__init__()
        self.flatten, self.dense = nn.Flatten(), nn.Linear(int(np.prod(SPEC.shape)), 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.flatten(torch.sqrt(x)))


@pytest.fixture()
def torch_mlp():
    from backends.torch_backend import TorchBackend

    return TorchBackend.from_zoo("mlp", SPEC, seed=0, hidden=8)


@pytest.fixture()
def nan_model(torch_mlp):
    with torch.no_grad():
        torch_mlp.module.dense2.bias.fill_(float("nan"))
    return torch_mlp


def test_predict_names_the_images_with_nan_scores():
    from backends.torch_backend import TorchBackend

    backend = TorchBackend(_LogOfMeanMinusHalf(), SPEC)
    x = np.full((4, *SPEC.shape), 0.9, np.float32)
    x[[1, 3]] = 0.2
    with pytest.raises(XaibenchError, match=r"torch model outputs NaN or infinite scores "
                                            r"\(6 of 12 outputs\) for 2 of 4 images \(first: "
                                            r"image 1\); e\.g\. output 0 of image 1 is nan"):
        backend.predict(x)
    assert np.isfinite(backend.predict(x[[0, 2]])).all()


@pytest.mark.parametrize("method", ["deep", "gradient", "partition"])
def test_explaining_a_nan_model_fails_instead_of_picking_class_0(nan_model, method):
    x = images(3)
    params = {"max_evals": 40} if method == "partition" else {"background": images(4, 1)}
    with pytest.raises(XaibenchError, match=NAN_SCORES):
        nan_model.explain(method, x, 1, **params)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_nonfinite_attributions_name_the_explainer():
    from backends.torch_backend import TorchBackend

    backend = TorchBackend(_SqrtLinear(), SPEC)
    x, background = images(2), images(3, 1)
    x[:, 0, 0, 0] = background[:, 0, 0, 0] = 0.0  # d sqrt / dx = inf there
    assert np.isfinite(backend.predict(x)).all()
    with pytest.raises(XaibenchError, match=r"explainer 'gradient' returned \d+ NaN or "
                                            r"infinite values for 2 of 2 images.*model-agnostic"):
        backend.explain("gradient", x, 1, background=background, nsamples=8)


def test_torch_divergence_stops_at_the_first_bad_epoch_naming_lr():
    from backends.torch_backend import TorchBackend

    backend = TorchBackend.from_zoo("fmnist_cnn", SPEC, seed=0)
    x, y = labelled()
    epochs_started = []
    bar = backend._epoch_bar
    backend._epoch_bar = lambda *args: epochs_started.append(args[1]) or bar(*args)
    with pytest.raises(TrainingDivergedError, match="torch " + DIVERGED.format(epochs=5)):
        backend.fit(x, y, epochs=5, batch_size=16, lr=1e12, seed=0, progress=False)
    assert epochs_started == [0]  # the remaining epochs were not run


def test_nonfinite_weights_after_training_are_an_error(nan_model):
    x, y = labelled()
    with pytest.raises(TrainingDivergedError, match=r"after 0 epochs with lr = 0\.001 the "
                                                    r"weights dense2\.bias hold NaN"):
        nan_model.fit(x, y, epochs=0, batch_size=16, lr=1e-3, seed=0)


def test_training_within_bounds_is_unaffected(torch_mlp):
    x, y = labelled()
    history = torch_mlp.fit(x, y, epochs=2, batch_size=16, lr=1e-2, seed=0, progress=False)
    assert len(history["loss"]) == 2 and torch_mlp.nonfinite_weights() == []


def test_training_progress_bars_follow_the_flag(torch_mlp, capfd):
    x, y = labelled()
    torch_mlp.fit(x, y, epochs=1, batch_size=16, lr=1e-3, seed=0, progress=False)
    assert "epoch" not in capfd.readouterr().err
    torch_mlp.fit(x, y, epochs=1, batch_size=16, lr=1e-3, seed=0, progress=True)
    assert "torch epoch 1/1" in capfd.readouterr().err


# --- other frameworks: one divergence each -----------------------------------------------
@pytest.mark.parametrize("framework, module, cls", [
    ("flax", "backends.flax_backend", "FlaxBackend"),
    ("tensorflow", "backends.keras_backend", "KerasBackend"),
])
def test_divergence_in_other_frameworks(framework, module, cls):
    pytest.importorskip(framework)
    import importlib

    backend_class = getattr(importlib.import_module(module), cls)
    backend = backend_class.from_zoo("fmnist_cnn", SPEC, seed=0)
    x, y = labelled()
    with pytest.raises(TrainingDivergedError, match=backend.name + " " + DIVERGED.format(epochs=3)):
        backend.fit(x, y, epochs=3, batch_size=16, lr=1e12, seed=0, progress=False)


@pytest.mark.parametrize("kwargs, message", [
    (dict(shape=(1, 3, 1), class_names=("y",), task="ranking"), "unknown task 'ranking'"),
    (dict(shape=(1, 3, 1), class_names=("a", "b"), task="regression"), "one output; got 2"),
    (dict(shape=(1, 3, 1), class_names=("a",), feature_names=("u", "v")),
     r"2 feature names do not fit shape \(1, 3, 1\)"),
    (dict(shape=(2, 2, 1), class_names=("a",), feature_names=("u", "v")), r"shape \(1, F, 1\)"),
])
def test_bad_tabular_specs_are_refused(kwargs, message):
    with pytest.raises(XaibenchError, match=message):
        ImageSpec(**kwargs)


def test_tabular_spec_checks_rows_as_one_row_images():
    spec = ImageSpec(shape=(1, 2, 1), class_names=("y",), feature_names=("age", "bmi"),
                     task="regression")
    assert spec.is_tabular and not SPEC.is_tabular
    assert spec.check(np.zeros((4, 1, 2, 1))).dtype == np.float32
    with pytest.raises(XaibenchError, match=r"\(N, 1, 2, 1\)"):
        spec.check(np.zeros((4, 2)))
