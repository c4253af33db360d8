"""KerasBackend: fast predict path, native deep / gradient explanations, zoo, training, weights.

The protocol suite (check_backend / check_explainer for deep and gradient) runs for keras in
tests/conformance; these tests cover what is specific to the Keras backend.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from backends._shap_native import spread_to_image  # noqa: E402
from backends.keras_backend import KerasBackend  # noqa: E402
from xaibench import ImageSpec  # noqa: E402
from xaibench.errors import ConfigError, UnsupportedModelError, XaibenchError  # noqa: E402
from xaibench.testing import sample_images  # noqa: E402

TINY = ImageSpec(shape=(8, 8, 1), class_names=("a", "b", "c"))
GREY28 = ImageSpec(shape=(28, 28, 1), class_names=("a", "b", "c"))


@pytest.fixture(scope="module")
def cnn() -> KerasBackend:
    return KerasBackend.from_zoo("fmnist_cnn", TINY, seed=0)


def test_fmnist_cnn_matches_the_torch_architecture(cnn):
    shapes = {w.path: tuple(w.shape) for w in cnn.model.weights}
    assert shapes == {"conv1/kernel": (3, 3, 1, 32), "conv1/bias": (32,),
                      "conv2/kernel": (3, 3, 32, 16), "conv2/bias": (16,),
                      "dense/kernel": (8 * 8 * 16, 3), "dense/bias": (3,)}
    assert [type(layer).__name__ for layer in cnn.model.layers] == [
        "InputLayer", "Conv2D", "ReLU", "Conv2D", "ReLU", "Flatten", "Dense"]


def test_predict_uses_the_compiled_path_and_equals_model_call(cnn, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("model.predict must not be called")

    monkeypatch.setattr(cnn.model, "predict", forbidden)
    monkeypatch.setattr(cnn, "_call", forbidden)  # traced once, at construction: no retracing
    for n in (1, 3, 7):
        x = sample_images(cnn, n, seed=n)
        np.testing.assert_array_equal(cnn.predict(x), cnn.model(x, training=False).numpy())


def test_predict_follows_new_weights(cnn):
    """The traced graph reads the model's variables: weights set later are the ones used."""
    x = sample_images(cnn, 4, seed=1)
    weights = cnn.get_weights()
    try:
        cnn.set_weights({layer: {k: v * 0.5 for k, v in params.items()}
                         for layer, params in weights.items()})
        np.testing.assert_array_equal(cnn.predict(x), cnn.model(x, training=False).numpy())
    finally:
        cnn.set_weights(weights)


def test_model_output_must_match_spec():
    model = KerasBackend.from_zoo("mlp", TINY).model
    with pytest.raises(ConfigError, match=r"outputs shape \(None, 3\); .* \(N, 2\)"):
        KerasBackend(model, ImageSpec(shape=(8, 8, 1), class_names=("a", "b")))


def test_unknown_architecture_suggests_close_names():
    with pytest.raises(ConfigError, match="did you mean 'fmnist_cnn'"):
        KerasBackend.from_zoo("fmnist_cn", TINY)


def test_deep_gathers_each_images_own_classes(cnn):
    x, background = sample_images(cnn, 3, seed=1), sample_images(cnn, 6, seed=2)
    targets = np.array([[0, 2], [1, 0], [2, 2]])
    attribution = cnn.explain("deep", x, targets, background=background)
    np.testing.assert_array_equal(attribution.output_indices, targets)
    assert attribution.additivity_gap().max() < 1e-4
    for n in range(3):
        for k in range(2):
            alone = cnn.explain("deep", x[n:n + 1], targets[n:n + 1, k], background=background)
            np.testing.assert_allclose(attribution.values[n, ..., k], alone.values[0, ..., 0],
                                       rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(attribution.base_values,
                               cnn.predict(background).mean(0)[targets], rtol=1e-6)


def test_deep_refuses_unsupported_activations_before_running(monkeypatch):
    import shap

    def forbidden(*args, **kwargs):
        raise AssertionError("shap must not run on an unsupported model")

    inputs = keras.Input(TINY.shape)
    x = keras.layers.LeakyReLU(name="leaky")(keras.layers.Conv2D(4, 3, name="conv")(inputs))
    x = keras.layers.Dense(8, activation="gelu", name="hidden")(keras.layers.Flatten()(x))
    backend = KerasBackend(keras.Model(inputs, keras.layers.Dense(3)(x)), TINY)
    monkeypatch.setattr(shap, "DeepExplainer", forbidden)
    with pytest.raises(UnsupportedModelError) as info:
        backend.explain("deep", sample_images(backend, 2), 1,
                        background=sample_images(backend, 4))
    message = str(info.value)
    assert "layer 'leaky' (LeakyReLU): TF op LeakyRelu" in message
    assert "layer 'hidden' (Dense, activation gelu): TF op Erfc" in message


def test_gradient_is_seeded_and_leaves_numpy_global_rng_alone(cnn):
    x, background = sample_images(cnn, 2, seed=1), sample_images(cnn, 6, seed=2)
    params = {"background": background, "nsamples": 20}
    state = np.random.get_state()
    first = cnn.explain("gradient", x, 2, seed=7, **params)
    assert np.array_equal(np.random.get_state()[1], state[1])
    np.testing.assert_array_equal(first.values, cnn.explain("gradient", x, 2, seed=7,
                                                            **params).values)
    assert not np.array_equal(first.values, cnn.explain("gradient", x, 2, seed=8,
                                                        **params).values)


def test_gradient_layer_by_index_equals_by_name(cnn):
    x, background = sample_images(cnn, 2, seed=1), sample_images(cnn, 6, seed=2)
    params = {"background": background, "nsamples": 20, "seed": 0}
    by_index = cnn.explain("gradient", x, 1, layer=2, **params)
    by_name = cnn.explain("gradient", x, 1, layer="relu1", **params)
    assert by_name.layer_values.shape == (2, 8, 8, 32, 1)
    np.testing.assert_array_equal(by_index.layer_values, by_name.layer_values)
    with pytest.raises(ConfigError, match=r"did you mean 'relu\d' or 'relu\d'\?"):
        cnn.explain("gradient", x, 1, layer="relu", **params)
    with pytest.raises(ConfigError, match="out of range"):
        cnn.explain("gradient", x, 1, layer=40, **params)


def test_spread_to_image_keeps_the_total():
    values = np.random.default_rng(0).normal(size=(2, 4, 3, 5, 2))
    for shape in ((8, 6, 1), (7, 5, 3), (3, 2, 3)):  # up, uneven up, down
        image = spread_to_image(values, shape)
        assert image.shape == (2, *shape, 2)
        np.testing.assert_allclose(image.sum((1, 2, 3)), values.sum((1, 2, 3)), rtol=1e-12)
    same = spread_to_image(values, (4, 3, 1))
    np.testing.assert_allclose(same[..., 0, :], values.sum(3), rtol=1e-12)


def test_vgg16_transfer_trains_and_explains_a_nested_layer():
    backend = KerasBackend.from_zoo("vgg16_transfer", GREY28, seed=0, weights="none")
    vgg = backend.model.get_layer("vgg16")
    assert not vgg.trainable and vgg.get_layer("block1_conv2").output.shape == (None, 32, 32, 64)
    frozen = vgg.get_layer("block1_conv1").kernel.numpy()
    rng = np.random.default_rng(0)
    bright = rng.uniform(0.5, 1.0, (10, *GREY28.shape)).astype(np.float32)
    dark = rng.uniform(0.0, 0.3, (16, *GREY28.shape)).astype(np.float32)
    history = backend.fit(np.concatenate([bright[:8], dark[:8]]), np.repeat([0, 1], 8),
                          epochs=1, batch_size=16, lr=0.3, seed=0, validation_fraction=0)
    assert len(history["loss"]) == 1
    np.testing.assert_array_equal(vgg.get_layer("block1_conv1").kernel.numpy(), frozen)

    x, background = bright[8:], dark[8:]
    attribution = backend.explain("gradient", x, [0, 0], background=background, nsamples=100,
                                  seed=0, layer="block1_conv2")
    assert attribution.layer_values.shape == (2, 32, 32, 64, 1)
    assert attribution.values.shape == (2, 28, 28, 1, 1)
    np.testing.assert_allclose(attribution.values.sum((1, 2, 3)),
                               attribution.layer_values.sum((1, 2, 3)), rtol=1e-9)
    np.testing.assert_allclose(attribution.base_values[:, 0],
                               backend.predict(background)[:, 0].mean(), rtol=1e-6)
    effect = np.abs(attribution.model_outputs - attribution.base_values)
    assert effect.min() > 0.05, "the test needs a clear output difference to be meaningful"
    assert np.all(attribution.additivity_gap() < 0.1 * effect)
    with pytest.raises(ConfigError, match=r"did you mean 'block1_conv\d' or 'block1_conv\d'"):
        backend.explain("gradient", x, 1, background=background, layer="block1_conv")


def test_vgg16_imagenet_weights_are_never_downloaded(tmp_path, monkeypatch):
    from backends.zoo.keras_models import VGG16_NOTOP_FILE

    if os.path.exists(f"/tmp/.keras/models/{VGG16_NOTOP_FILE}"):
        pytest.skip("the weights are in Keras' /tmp cache on this machine")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match=str(tmp_path / "models" / VGG16_NOTOP_FILE)):
        KerasBackend.from_zoo("vgg16_transfer", GREY28)
    with pytest.raises(ConfigError, match="nowhere.h5"):
        KerasBackend.from_zoo("vgg16_transfer", GREY28, weights=tmp_path / "nowhere.h5")


def test_fit_with_augmentation_and_early_stopping_learns():
    backend = KerasBackend.from_zoo("mlp", TINY, seed=0, hidden=16)
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = (rng.uniform(0, 0.2, (60, *TINY.shape)) + y[:, None, None, None] / 3).astype(np.float32)
    history = backend.fit(x, y, epochs=4, batch_size=16, lr=1e-2, seed=0, augment=True,
                          patience=2, validation_fraction=0.25)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history["loss"][-1] < history["loss"][0]
    with pytest.raises(ConfigError, match="validation_fraction"):
        backend.fit(x, y, epochs=1, batch_size=16, lr=1e-2, seed=0, patience=1,
                    validation_fraction=0)


def test_save_is_atomic_and_load_checks_the_architecture(cnn, tmp_path):
    path = tmp_path / "checkpoint.bin"
    cnn.save(path)
    assert os.listdir(tmp_path) == ["checkpoint.bin"]
    other = KerasBackend.from_zoo("fmnist_cnn", TINY, seed=1)
    other.load(path)
    x = sample_images(cnn, 3)
    np.testing.assert_array_equal(other.predict(x), cnn.predict(x))
    with pytest.raises(XaibenchError, match="another architecture"):
        KerasBackend.from_zoo("fmnist_cnn", TINY, conv2=8).load(path)


# --- model randomisation (sanity checks) --------------------------------------------------------
def _changed(backend: KerasBackend, other: KerasBackend) -> set[str]:
    """Paths of the weights that differ between two backends of the same architecture."""
    return {a.path for a, b in zip(backend.model.weights, other.model.weights, strict=True)
            if not np.array_equal(a.numpy(), b.numpy())}


def test_layer_names_and_randomized_reinitialise_from_the_top():
    backend = KerasBackend.from_zoo("fmnist_cnn", TINY, seed=0)
    for variable in backend.model.weights:  # no weight at its initial value (zero biases)
        variable.assign(variable + 0.1)
    x = sample_images(backend, 3)
    before = backend.predict(x)
    assert backend.layer_names() == ["conv1", "conv2", "dense"]
    assert _changed(backend, backend.randomized(0)) == set()
    top = backend.randomized(1, seed=3)
    assert _changed(backend, top) == {"dense/kernel", "dense/bias"}
    np.testing.assert_array_equal(backend.randomized(1, seed=3).predict(x), top.predict(x))
    assert not np.allclose(backend.randomized(1, seed=4).predict(x), top.predict(x))
    full = backend.randomized(3, seed=3)
    assert _changed(backend, full) == {v.path for v in backend.model.weights}
    assert _changed(top, full) == {"conv1/kernel", "conv1/bias", "conv2/kernel", "conv2/bias"}
    np.testing.assert_array_equal(backend.predict(x), before)  # the original is untouched
    with pytest.raises(ConfigError, match=r"n_layers must be in 0\.\.3"):
        backend.randomized(4)


def test_randomized_reaches_layers_of_nested_models():
    backend = KerasBackend.from_zoo("vgg16_transfer", GREY28, seed=0, weights="none")
    names = backend.layer_names()
    assert names[0] == "block1_conv1" and names[-2:] == ["block5_conv3", "predictions"]
    assert _changed(backend, backend.randomized(2, seed=1)) == {
        "block5_conv3/kernel", "predictions/kernel"}  # both biases start (and stay) at zero


def test_mprt_runs_on_keras(cnn):
    from xaibench.metrics import MPRT, mprt_curve

    x = sample_images(cnn, 3, seed=1)
    params = {"background": sample_images(cnn, 4, seed=2)}
    attribution = cnn.explain("deep", x, 1, **params)
    names, curve = mprt_curve(cnn, x, attribution, explain_params=params, seed=5)
    assert names == ["dense", "conv2", "conv1"] and curve.shape == (3, 1, 3)
    assert float(curve[..., -1].mean()) < 0.5, curve  # whole model re-initialised
    np.testing.assert_allclose(MPRT(seed=5)(cnn, x, attribution, explain_params=params),
                               curve.mean(axis=-1))


def test_the_shipped_vgg16_transfer_experiment_runs_on_an_example_folder(tmp_path, monkeypatch):
    """experiments/vgg16_transfer.toml as shipped, on 32x32 instead of 224x224 images."""
    import xaibench
    from xaibench.data import example_folder
    from xaibench.report import Results, model_table

    text = (Path(__file__).resolve().parents[2] / "experiments" / "vgg16_transfer.toml").read_text()
    for old, new in [("input_size = 224", "input_size = 32"), ("size = 224", "size = 32"),
                     ("epochs = 8", "epochs = 1"), ("nsamples = 50", "nsamples = 8"),
                     ("max_evals = 200", "max_evals = 40")]:
        assert old in text
        text = text.replace(old, new)
    monkeypatch.chdir(tmp_path)
    example_folder.write("data/example_photos", n_classes=3, per_class=4, size=32)
    (tmp_path / "vgg16_transfer.toml").write_text(text)
    results = xaibench.run("vgg16_transfer.toml", cache_dir=tmp_path / "cache", progress=False)
    cells = results.cells.set_index("masker")
    assert (cells["status"] == "done").all() and len(cells) == 4
    assert sorted(cells.index) == ["", "blur(32,32)", "inpaint_ns", "inpaint_telea"]
    gradient = results.attribution(cells.loc["", "cell_key"])
    assert gradient.values.shape == (2, 32, 32, 3, 2)  # the top-2 ranked classes per image
    assert all(len(set(row)) == 2 for row in gradient.output_indices)
    assert gradient.layer_values.shape[1:3] == (8, 8)  # block3_conv3 at 32x32 input
    [params] = model_table(Results.load(results.root))["params"]
    assert "weights=none" in params and "input_size=32" in params
