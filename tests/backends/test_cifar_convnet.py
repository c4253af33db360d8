"""The cifar_convnet zoo architecture: the same network in torch, Keras and Flax (weights
transfer and predictions agree), BatchNorm trained in every framework, and DeepLIFT additive
on a trained model in each (shap's torch and TF DeepExplainer, our JAX DeepLIFT)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("flax")

from backends.flax_backend import FlaxBackend  # noqa: E402
from backends.torch_backend import TorchBackend  # noqa: E402
from xaibench import ImageSpec  # noqa: E402
from xaibench.errors import ConfigError  # noqa: E402

SPEC = ImageSpec((32, 32, 3), tuple("abcdefghij"))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.random((48, *SPEC.shape), dtype=np.float32)
    return x, rng.integers(0, 10, len(x))


@pytest.fixture(scope="module")
def trained(data):
    """A width-1 torch ConvNet trained one epoch: BatchNorm statistics away from 0 / 1."""
    backend = TorchBackend.from_zoo("cifar_convnet", SPEC, seed=0, width=1)
    backend.fit(*data, epochs=1, batch_size=16, lr=1e-2, seed=0, progress=False)
    return backend


def test_torch_layers_follow_the_tutorial():
    module = TorchBackend.from_zoo("cifar_convnet", SPEC, seed=0).module
    names = [name for name, _ in module.named_children()]
    assert names[:7] == ["conv1", "relu1", "bn1", "conv2", "relu2", "pool1", "bn2"]
    assert names[-2:] == ["conv7", "avgpool"]
    widths = [module.get_submodule(f"conv{i}").out_channels for i in range(1, 8)]
    assert widths == [8, 8, 32, 32, 128, 128, 10]
    relus = [m for m in module.modules() if isinstance(m, torch.nn.ReLU)]
    assert len(relus) == len({id(m) for m in relus}) == 6 and not any(m.inplace for m in relus)
    bound = np.sqrt(6 / (9 * 3 + 9 * 8))  # Xavier-uniform bound of conv1
    weight = module.conv1.weight.detach().numpy()
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.8 * bound
    assert not module.conv1.bias.detach().numpy().any()


def test_image_size_is_checked():
    with pytest.raises(ConfigError, match=r"cifar_convnet needs images of 24..47 pixels per "
                                          r"side.*got 16x16"):
        TorchBackend.from_zoo("cifar_convnet", ImageSpec((16, 16, 1), tuple("ab")))


def test_flax_fit_trains_batch_norm_statistics(data):
    backend = FlaxBackend.from_zoo("cifar_convnet", SPEC, seed=0, width=1)
    before = backend.get_weights()
    history = backend.fit(*data, epochs=1, batch_size=24, lr=1e-2, seed=0, progress=False)
    after = backend.get_weights()
    assert np.isfinite(history["loss"][0])
    assert not np.allclose(after["bn1"]["mean"], before["bn1"]["mean"])
    assert not np.allclose(after["bn6"]["var"], before["bn6"]["var"])
    assert np.isfinite(backend.predict(data[0][:4])).all()


def test_deep_is_additive_and_equal_in_torch_and_flax(trained, data):
    x, bg = data[0][:2], data[0][10:16]
    flax_backend = FlaxBackend.from_zoo("cifar_convnet", SPEC, seed=1, width=1)
    flax_backend.set_weights(trained.get_weights())
    np.testing.assert_allclose(flax_backend.predict(x), trained.predict(x), atol=1e-5)
    ours = flax_backend.explain("deep", x, 2, background=bg)
    theirs = trained.explain("deep", x, 2, background=bg)  # shap's, additivity checked
    scale = np.abs(theirs.values).max()
    assert theirs.additivity_gap().max() < 1e-4 and ours.additivity_gap().max() < 1e-4
    np.testing.assert_allclose(ours.values, theirs.values, atol=1e-4 * scale)


def test_keras_version_is_the_same_network_and_deep_is_additive(trained, data):
    pytest.importorskip("tensorflow")
    from backends.keras_backend import KerasBackend

    x, bg = data[0][:2], data[0][10:16]
    keras_backend = KerasBackend.from_zoo("cifar_convnet", SPEC, seed=1, width=1)
    keras_backend.fit(*data, epochs=1, batch_size=16, lr=1e-2, seed=0, progress=False)
    keras_backend.set_weights(trained.get_weights())
    np.testing.assert_allclose(keras_backend.predict(x), trained.predict(x), atol=1e-5)
    ours = keras_backend.explain("deep", x, 2, background=bg)
    theirs = trained.explain("deep", x, 2, background=bg)
    assert ours.additivity_gap().max() < 1e-4
    np.testing.assert_allclose(ours.values, theirs.values, atol=1e-4 * np.abs(theirs.values).max())
