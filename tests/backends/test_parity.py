"""Flax against torch (and Keras) on identical weights: weight transfer, DeepLIFT, gradients.

shap has no JAX path, so the Flax backend's ``deep`` and ``gradient`` are our own; here they are
held to shap's PyTorch explainers (through :class:`TorchBackend`) on weights copied with
``target.set_weights(source.get_weights())``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
fnn = pytest.importorskip("flax.linen")
jnp = jax.numpy
nn = torch.nn

from backends import _jax_deeplift  # noqa: E402
from backends.flax_backend import FlaxBackend  # noqa: E402
from backends.torch_backend import TorchBackend  # noqa: E402
from xaibench import Attribution, ImageSpec  # noqa: E402
from xaibench.errors import ConfigError  # noqa: E402

SPEC = ImageSpec(shape=(8, 8, 1), class_names=("a", "b", "c"))


def images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *SPEC.shape), dtype=np.float32)


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    out = images(3, seed=1)
    out[0, :, :3] = 0.0  # black columns, as in the background's black image: Δ = 0 there
    return out


@pytest.fixture(scope="module")
def bg() -> np.ndarray:
    out = images(7, seed=2)
    out[0] = 0.0
    return out


def flax_copy(source, module: fnn.Module) -> FlaxBackend:
    """A Flax backend of ``module`` holding the weights of a torch/Keras backend."""
    variables = module.init(jax.random.key(0), jnp.zeros((1, *SPEC.shape)))
    backend = FlaxBackend(module, variables, SPEC)
    backend.set_weights(source.get_weights())
    return backend


@pytest.fixture(scope="module")
def zoo_pair() -> tuple[TorchBackend, FlaxBackend]:
    torch_cnn = TorchBackend.from_zoo("fmnist_cnn", SPEC, seed=3, conv1=8, conv2=4)
    return torch_cnn, flax_copy(torch_cnn, FlaxBackend.from_zoo("fmnist_cnn", SPEC, conv1=8,
                                                                 conv2=4).module)


# --- DeepLIFT -----------------------------------------------------------------------------------
class _TorchMixed(nn.Module):
    """Every activation shap's PyTorch DeepExplainer handles, plus max pooling and softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.act1 = nn.Conv2d(1, 6, 3, padding="same"), nn.ELU()
        self.pool = nn.MaxPool2d(2)
        self.conv2, self.act2 = nn.Conv2d(6, 4, 3, padding="same"), nn.Tanh()
        self.dense1, self.act3 = nn.Linear(64, 12), nn.GELU()
        self.dense2, self.act4 = nn.Linear(12, 10), nn.Softplus()
        self.dense3, self.act5 = nn.Linear(10, 8), nn.LeakyReLU()
        self.dense4, self.act6 = nn.Linear(8, 6), nn.Sigmoid()
        self.dense5, self.softmax = nn.Linear(6, 3), nn.Softmax(dim=1)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        v = self.act2(self.conv2(self.pool(self.act1(self.conv1(v)))))
        v = torch.flatten(v.permute(0, 2, 3, 1), 1)
        for dense, act in ((self.dense1, self.act3), (self.dense2, self.act4),
                           (self.dense3, self.act5), (self.dense4, self.act6)):
            v = act(dense(v))
        return self.softmax(self.dense5(v))


class _FlaxMixed(fnn.Module):
    @fnn.compact
    def __call__(self, v: jax.Array) -> jax.Array:
        v = fnn.elu(fnn.Conv(6, (3, 3), padding="SAME", name="conv1")(v))
        v = fnn.max_pool(v, (2, 2), strides=(2, 2))
        v = jnp.tanh(fnn.Conv(4, (3, 3), padding="SAME", name="conv2")(v))
        v = v.reshape(v.shape[0], -1)
        v = fnn.gelu(fnn.Dense(12, name="dense1")(v), approximate=False)
        v = fnn.softplus(fnn.Dense(10, name="dense2")(v))
        v = fnn.leaky_relu(fnn.Dense(8, name="dense3")(v))
        v = fnn.sigmoid(fnn.Dense(6, name="dense4")(v))
        return fnn.softmax(fnn.Dense(3, name="dense5")(v))


def deep_parity(torch_backend: TorchBackend, flax_backend: FlaxBackend, x: np.ndarray,
                bg: np.ndarray) -> tuple[float, Attribution, Attribution]:
    """(max |Flax − torch| / max |torch|, Flax attribution, torch attribution) for top-2 'deep'."""
    np.testing.assert_allclose(flax_backend.predict(bg), torch_backend.predict(bg), atol=1e-5)
    theirs = torch_backend.explain("deep", x, 2, background=bg)
    ours = flax_backend.explain("deep", x, 2, background=bg)
    np.testing.assert_array_equal(ours.output_indices, theirs.output_indices)
    np.testing.assert_allclose(ours.base_values, theirs.base_values, rtol=1e-5, atol=1e-7)
    gap_scale = max(1.0, np.abs(ours.model_outputs - ours.base_values).max())
    assert ours.additivity_gap().max() <= 1e-4 * gap_scale
    scale = np.abs(theirs.values).max()
    assert scale > 0
    return np.abs(ours.values - theirs.values).max() / scale, ours, theirs


def test_deep_matches_shap_torch_on_the_zoo_cnn(zoo_pair, x, bg):
    difference, _, _ = deep_parity(*zoo_pair, x, bg)
    assert difference <= 1e-5


def test_deep_matches_shap_torch_for_every_activation_max_pooling_and_softmax(x, bg):
    """Smooth activations make float32 DeepLIFT ill-conditioned (Δout/Δin of nearly equal
    values: shap's own float32 result is ~1e-4 off its float64 one), so the rules are compared
    exactly in float64 and the float32 backends to that precision."""
    torch.manual_seed(5)
    module = _TorchMixed()
    with torch.no_grad():  # larger weights: activations leave their near-linear range
        for param in module.parameters():
            param.mul_(2.0)
    torch_backend = TorchBackend(module, SPEC)
    flax_backend = flax_copy(torch_backend, _FlaxMixed())
    difference, _, theirs = deep_parity(torch_backend, flax_backend, x, bg)
    assert difference <= 1e-3

    exact = TorchBackend(copy.deepcopy(module).double(), SPEC).explain("deep", x, 2,
                                                                       background=bg)
    with jax.enable_x64(True):
        variables = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), flax_backend.variables)
        plan = _jax_deeplift.build_plan(flax_backend.module.apply, variables, SPEC.shape,
                                        jnp.float64)
        ours = np.stack([_jax_deeplift.image_attributions(
            plan, variables, xi.astype(np.float64), bg.astype(np.float64), idx, chunk=4)
            for xi, idx in zip(x, exact.output_indices)])
    ours = np.moveaxis(ours, 1, -1)
    assert np.abs(ours - exact.values).max() <= 1e-10 * np.abs(exact.values).max()


# --- expected gradients -------------------------------------------------------------------------
@pytest.mark.parametrize("layer", [None, "conv2"])
def test_gradient_converges_to_shap_torch(zoo_pair, x, bg, layer):
    """Both are Monte Carlo estimates of the same expected gradients (different draws)."""
    torch_cnn, flax_cnn = zoo_pair
    theirs = torch_cnn.explain("gradient", x[:2], 2, background=bg, nsamples=1000, seed=0,
                               layer=layer)
    ours = flax_cnn.explain("gradient", x[:2], 2, background=bg, nsamples=1000, seed=0,
                            layer=layer)
    np.testing.assert_array_equal(ours.output_indices, theirs.output_indices)
    np.testing.assert_allclose(ours.base_values, theirs.base_values, rtol=1e-5, atol=1e-7)
    a, b = (ours.values, theirs.values) if layer is None else (ours.layer_values,
                                                               theirs.layer_values)
    assert a.shape == b.shape
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] >= 0.99
    scale = np.abs(ours.model_outputs - ours.base_values).max()
    for attribution in (ours, theirs):  # additivity in expectation
        assert attribution.additivity_gap().max() <= 0.05 * scale


# --- weight transfer ----------------------------------------------------------------------------
def backend_class(framework: str) -> type:
    """TorchBackend, or KerasBackend (the test is skipped without TensorFlow)."""
    if framework == "torch":
        return TorchBackend
    pytest.importorskip("tensorflow")
    from backends.keras_backend import KerasBackend

    return KerasBackend


@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize("architecture", ["fmnist_cnn", "mlp"])
def test_round_trip_through_flax_keeps_predictions_and_weights(framework, architecture, x):
    cls = backend_class(framework)
    source = cls.from_zoo(architecture, SPEC, seed=5)
    flax_backend = FlaxBackend.from_zoo(architecture, SPEC, seed=6)
    flax_backend.set_weights(source.get_weights())
    np.testing.assert_allclose(flax_backend.predict(x), source.predict(x), atol=1e-5)
    back = cls.from_zoo(architecture, SPEC, seed=7)
    back.set_weights(flax_backend.get_weights())
    np.testing.assert_allclose(back.predict(x), source.predict(x), atol=1e-5)
    theirs, ours = source.get_weights(), back.get_weights()
    assert ours.keys() == theirs.keys()
    for layer, params in theirs.items():
        assert ours[layer].keys() == params.keys()
        for name, value in params.items():
            np.testing.assert_array_equal(ours[layer][name], value, err_msg=f"{layer}/{name}")


class _TorchNormed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 4, 3, padding="same"), nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.dense = nn.Linear(8 * 8 * 4, 3)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        v = self.relu(self.bn1(self.conv1(v)))
        return self.dense(torch.flatten(v.permute(0, 2, 3, 1), 1))


class _FlaxNormed(fnn.Module):
    @fnn.compact
    def __call__(self, v: jax.Array) -> jax.Array:
        v = fnn.Conv(4, (3, 3), padding="SAME", name="conv1")(v)
        v = fnn.relu(fnn.BatchNorm(use_running_average=True, epsilon=1e-5, name="bn1")(v))
        return fnn.Dense(3, name="dense")(v.reshape(v.shape[0], -1))


def test_batch_norm_statistics_transfer(x):
    torch.manual_seed(8)
    module = _TorchNormed().eval()
    with torch.no_grad():
        for tensor in (module.bn1.weight, module.bn1.bias, module.bn1.running_mean):
            tensor.copy_(torch.randn(4))
        module.bn1.running_var.copy_(torch.rand(4) + 0.5)
    source = TorchBackend(module, SPEC)
    flax_backend = flax_copy(source, _FlaxNormed())
    assert set(flax_backend.variables["batch_stats"]["bn1"]) == {"mean", "var"}
    np.testing.assert_allclose(flax_backend.predict(x), source.predict(x), atol=1e-5)
    back = TorchBackend(_TorchNormed(), SPEC)
    back.set_weights(flax_backend.get_weights())
    np.testing.assert_allclose(back.predict(x), source.predict(x), atol=1e-5)


def test_transfer_names_what_does_not_fit():
    cnn = FlaxBackend.from_zoo("fmnist_cnn", SPEC, conv1=8, conv2=4)
    with pytest.raises(ConfigError, match="missing layer 'dense1'.*unexpected layer 'conv1'"):
        TorchBackend.from_zoo("mlp", SPEC).set_weights(cnn.get_weights())
    with pytest.raises(ConfigError, match=r"'conv1/kernel' has shape \(3, 3, 1, 8\), the torch "
                                          r"model expects \(3, 3, 1, 32\)"):
        TorchBackend.from_zoo("fmnist_cnn", SPEC, conv2=4).set_weights(cnn.get_weights())


def test_batch_norm_statistics_transfer_to_keras(x):
    keras = pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    from backends.keras_backend import KerasBackend

    variables = _FlaxNormed().init(jax.random.key(9), jnp.zeros((1, *SPEC.shape)))
    stats = {"mean": jnp.linspace(-1, 1, 4), "var": jnp.linspace(0.5, 2, 4)}
    flax_backend = FlaxBackend(_FlaxNormed(), {**variables, "batch_stats": {"bn1": stats}}, SPEC)
    inputs = keras.Input(SPEC.shape)
    v = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(inputs)
    v = keras.layers.ReLU()(keras.layers.BatchNormalization(epsilon=1e-5, name="bn1")(v))
    outputs = keras.layers.Dense(3, name="dense")(keras.layers.Flatten()(v))
    keras_backend = KerasBackend(keras.Model(inputs, outputs), SPEC)
    keras_backend.set_weights(flax_backend.get_weights())
    np.testing.assert_allclose(keras_backend.predict(x), flax_backend.predict(x), atol=1e-5)
    assert keras_backend.get_weights()["bn1"].keys() == {"scale", "bias", "mean", "var"}
