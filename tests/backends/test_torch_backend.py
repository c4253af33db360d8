"""The PyTorch backend: prediction, shap Deep/Gradient explainers, unsupported models, training.

Small random-weight models keep this fast; the training test uses real Fashion-MNIST when its
files are installed (Debian package ``dataset-fashion-mnist``) and is skipped otherwise.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from backends.torch_backend import TorchBackend  # noqa: E402
from xaibench import ImageSpec  # noqa: E402
from xaibench.errors import ConfigError, UnsupportedModelError, XaibenchError  # noqa: E402

SPEC = ImageSpec(shape=(12, 12, 1), class_names=("a", "b", "c"))
H, W, C = SPEC.shape
FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *SPEC.shape), dtype=np.float32)


@pytest.fixture(scope="module")
def cnn() -> TorchBackend:
    return TorchBackend.from_zoo("fmnist_cnn", SPEC, seed=0)


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return images(4, seed=1)


@pytest.fixture(scope="module")
def bg() -> np.ndarray:
    return images(10, seed=2)


# --- prediction ---------------------------------------------------------------------------------
def test_predict_shape_dtype_and_counting(cnn, x):
    before = cnn.n_evals
    scores = cnn.predict(x)
    assert scores.shape == (4, 3) and scores.dtype == np.float32
    assert np.all(np.isfinite(scores))
    assert cnn.n_evals == before + 4
    # NHWC outside, NCHW inside: the same as calling the module on the permuted batch
    with torch.no_grad():
        direct = cnn.module(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(scores, direct, rtol=1e-6, atol=1e-6)


def test_predict_does_not_depend_on_batching(x):
    small = TorchBackend.from_zoo("fmnist_cnn", SPEC, seed=0)
    small.batch_size = 3
    big = TorchBackend.from_zoo("fmnist_cnn", SPEC, seed=0)
    xs = images(10, seed=3)
    np.testing.assert_allclose(small.predict(xs), big.predict(xs), rtol=1e-5, atol=1e-6)
    assert small.n_evals == big.n_evals == 10


def test_predict_accepts_read_only_and_float64(cnn, x):
    ro = x.astype(np.float64)
    ro.flags.writeable = False
    np.testing.assert_allclose(cnn.predict(ro), cnn.predict(x), rtol=1e-6)


@pytest.mark.parametrize("bad", [np.zeros((12, 12, 1)), np.zeros((2, 12, 12, 3)),
                                 np.zeros((2, 1, 12, 12)), np.full((2, 12, 12, 1), "a")])
def test_predict_rejects_bad_input(cnn, bad):
    with pytest.raises(XaibenchError):
        cnn.predict(bad)


def test_constructor_checks_the_output_shape():
    with pytest.raises(XaibenchError, match=r"\(N, 3\)"):
        TorchBackend(nn.Sequential(nn.Flatten(), nn.Linear(H * W * C, 5)), SPEC)


# --- zoo ----------------------------------------------------------------------------------------
def test_from_zoo_is_seeded():
    a, b = (TorchBackend.from_zoo("fmnist_cnn", SPEC, seed=s) for s in (0, 0))
    c = TorchBackend.from_zoo("fmnist_cnn", SPEC, seed=1)
    xs = images(2, seed=4)
    np.testing.assert_array_equal(a.predict(xs), b.predict(xs))
    assert not np.allclose(a.predict(xs), c.predict(xs))


def test_from_zoo_errors():
    with pytest.raises(ConfigError, match="did you mean 'fmnist_cnn'"):
        TorchBackend.from_zoo("fmnist_cn", SPEC)
    with pytest.raises(ConfigError, match="mlp"):
        TorchBackend.from_zoo("mlp", SPEC, width=3)
    assert TorchBackend.from_zoo("mlp", SPEC, hidden=7).module.dense1.out_features == 7


def test_fmnist_cnn_layout_and_channels_last_flatten(cnn, x):
    m = cnn.module
    relus = [mod for mod in m.modules() if isinstance(mod, nn.ReLU)]
    assert len(relus) == 2 and not any(r.inplace for r in relus)
    assert (m.conv1.out_channels, m.conv2.out_channels) == (32, 16)
    assert m.conv1.kernel_size == m.conv2.kernel_size == (3, 3)
    assert m.dense.weight.shape == (3, H * W * 16)
    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    with torch.no_grad():
        feats = m.relu2(m.conv2(m.relu1(m.conv1(t))))  # (N, 16, H, W), SAME padding
        assert feats.shape == (4, 16, H, W)
        nhwc = feats.permute(0, 2, 3, 1).reshape(4, -1).numpy()  # Keras/Flax flatten order
    expected = nhwc @ m.dense.weight.detach().numpy().T + m.dense.bias.detach().numpy()
    np.testing.assert_allclose(cnn.predict(x), expected, rtol=1e-5, atol=1e-5)


# --- deep ---------------------------------------------------------------------------------------
def test_deep_top_k(cnn, x, bg):
    scores = cnn.predict(x)
    state = {k: v.clone() for k, v in cnn.module.state_dict().items()}
    att = cnn.explain("deep", x, 2, background=bg)
    assert att.values.shape == (4, H, W, C, 2)
    np.testing.assert_array_equal(att.output_indices, np.argsort(-scores, axis=1)[:, :2])
    scale = np.abs(att.model_outputs - att.base_values).max()
    assert att.additivity_gap().max() < 1e-4 * scale
    mean_bg = cnn.predict(bg).astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(att.base_values, mean_bg[att.output_indices], rtol=1e-5, atol=1e-7)
    assert att.model_evals > 0
    # shap's hooks and the x / y tensors it attaches are gone; the weights are untouched
    assert cnn.module.state_dict().keys() == state.keys()
    for k, v in cnn.module.state_dict().items():
        assert torch.equal(v, state[k])
    assert not any(m._forward_hooks or m._backward_hooks for m in cnn.module.modules())


def test_deep_explicit_targets_per_image(cnn, x, bg):
    targets = np.array([[0, 2], [1, 0], [2, 2], [1, 1]])
    att = cnn.explain("deep", x, targets, background=bg)
    np.testing.assert_array_equal(att.output_indices, targets)
    assert att.additivity_gap().max() < 1e-4 * np.abs(att.model_outputs - att.base_values).max()
    # each (image, class) is explained the same whatever else is asked for
    single = cnn.explain("deep", x, np.array([0, 1, 2, 1]), background=bg)
    np.testing.assert_allclose(att.values[[0, 1, 2, 3], ..., [0, 0, 0, 0]],
                               single.values[..., 0], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(att.values[2, ..., 0], att.values[2, ..., 1])
    mean_bg = cnn.predict(bg).astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(att.base_values, mean_bg[targets], rtol=1e-5, atol=1e-7)


def test_deep_parameter_errors(cnn, x, bg):
    with pytest.raises(ConfigError, match="background"):
        cnn.native_explain("deep", x, np.zeros((4, 1), int))
    with pytest.raises(ConfigError, match="nsamples"):
        cnn.native_explain("deep", x, np.zeros((4, 1), int), background=bg, nsamples=3)


# --- gradient -----------------------------------------------------------------------------------
def test_gradient_shape_seed_and_additivity(cnn, x, bg):
    np.random.seed(123)
    state = np.random.get_state()
    params = dict(background=bg, nsamples=300, seed=7)
    att = cnn.explain("gradient", x, 2, **params)
    again = cnn.explain("gradient", x, 2, **params)
    other = cnn.explain("gradient", x, 2, **{**params, "seed": 8})
    assert att.values.shape == (4, H, W, C, 2)
    np.testing.assert_array_equal(att.values, again.values)
    assert not np.allclose(att.values, other.values)
    assert np.random.get_state()[1].tolist() == state[1].tolist(), "global numpy RNG changed"
    mean_bg = cnn.predict(bg).astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(att.base_values, mean_bg[att.output_indices], rtol=1e-5, atol=1e-7)
    # expected gradients are additive in expectation: the sampling error is small
    scale = np.abs(att.model_outputs - att.base_values).max()
    assert att.additivity_gap().max() < 0.2 * scale
    assert att.model_evals >= 4 * 2 * 300


def test_gradient_local_smoothing_is_seeded(cnn, x, bg):
    params = dict(background=bg, nsamples=20, seed=1, local_smoothing=0.1)
    a = cnn.explain("gradient", x[:2], 1, **params)
    b = cnn.explain("gradient", x[:2], 1, **params)
    np.testing.assert_array_equal(a.values, b.values)


def test_gradient_at_a_layer(cnn, x, bg):
    att = cnn.explain("gradient", x, 1, background=bg, nsamples=200, seed=0, layer="relu2")
    assert att.layer_values.shape == (4, H, W, 16, 1)
    assert att.values.shape == (4, H, W, C, 1)
    np.testing.assert_allclose(att.values.sum(axis=(1, 2, 3)),
                               att.layer_values.sum(axis=(1, 2, 3)), rtol=1e-6, atol=1e-9)
    # expected gradients in the layer's space are (approximately) additive too
    scale = np.abs(att.model_outputs - att.base_values).max()
    assert att.additivity_gap().max() < 0.2 * scale
    by_index = cnn.explain("gradient", x, 1, background=bg, nsamples=200, seed=0, layer=0)
    assert by_index.layer_values.shape == (4, H, W, 32, 1)  # layer 0 = conv1
    with pytest.raises(ConfigError, match="did you mean 'relu2'"):
        cnn.explain("gradient", x, 1, background=bg, layer="relu_2")
    with pytest.raises(ConfigError, match="spatial"):
        cnn.explain("gradient", x, 1, background=bg, layer="dense")


# --- models shap's DeepExplainer cannot explain -------------------------------------------------
class ReusedReLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(C, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.dense = nn.Linear(4 * H * W, 3)

    def forward(self, t):
        return self.dense(self.act(self.conv2(self.act(self.conv1(t)))).flatten(1))


def inplace_relu() -> nn.Module:
    return nn.Sequential(nn.Conv2d(C, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Flatten(),
                         nn.Linear(4 * H * W, 3))


class FunctionalReLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(C, 8, 3, padding=1)
        self.dense = nn.Linear(8 * H * W, 3)

    def forward(self, t):
        return self.dense(F.relu(self.conv(t)).flatten(1))


class InplaceResidual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.relu1 = nn.Conv2d(C, 4, 3, padding=1), nn.ReLU()
        self.conv2, self.relu2 = nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()
        self.dense = nn.Linear(4 * H * W, 3)

    def forward(self, t):
        out = self.relu1(self.conv1(t))
        y = self.conv2(out)
        y += out
        return self.dense(self.relu2(y).flatten(1))


@pytest.mark.parametrize("build, pattern", [
    (ReusedReLU, r"'act' \(ReLU\(\)\) is called 2 times"),
    (inplace_relu, r"'1' \(ReLU\(inplace=True\)\) is in-place"),
])
def test_deep_refuses_before_running(build, pattern, x, bg, monkeypatch):
    import shap

    torch.manual_seed(0)
    backend = TorchBackend(build(), SPEC)

    def must_not_run(*args, **kwargs):
        raise AssertionError("DeepExplainer ran on an unsupported model")

    monkeypatch.setattr(shap, "DeepExplainer", must_not_run)
    with pytest.raises(UnsupportedModelError, match=pattern):
        backend.explain("deep", x, 1, background=bg)


@pytest.mark.parametrize("build, pattern", [
    (FunctionalReLU, "functional nonlinearity"),
    (InplaceResidual, "in-place"),
])
def test_deep_detects_silent_failures(build, pattern, x, bg):
    torch.manual_seed(0)
    backend = TorchBackend(build(), SPEC)
    before = backend.predict(x)
    with pytest.raises(UnsupportedModelError, match=pattern):
        backend.explain("deep", x, 1, background=bg)
    # the failed run leaves no hooks or parameters behind
    assert not any(m._forward_hooks or m._backward_hooks for m in backend.module.modules())
    assert all("." not in k or k.rsplit(".", 1)[1] in ("weight", "bias")
               for k in backend.module.state_dict())
    np.testing.assert_array_equal(backend.predict(x), before)
    # gradient methods do not care
    att = backend.explain("gradient", x, 1, background=bg, nsamples=10)
    assert att.values.shape == (4, H, W, C, 1)


# --- randomisation ------------------------------------------------------------------------------
def test_layer_names_and_randomized(cnn, x):
    assert cnn.layer_names() == ["conv1", "conv2", "dense"]
    before = cnn.predict(x)
    same = cnn.randomized(0)
    np.testing.assert_array_equal(same.predict(x), before)
    top = cnn.randomized(1, seed=3)
    assert torch.equal(top.module.conv2.weight, cnn.module.conv2.weight)
    assert not torch.equal(top.module.dense.weight, cnn.module.dense.weight)
    np.testing.assert_array_equal(cnn.randomized(1, seed=3).predict(x), top.predict(x))
    full = cnn.randomized(3)
    assert not torch.equal(full.module.conv1.weight, cnn.module.conv1.weight)
    np.testing.assert_array_equal(cnn.predict(x), before)  # original untouched
    with pytest.raises(ConfigError):
        cnn.randomized(4)


# --- training, save / load ----------------------------------------------------------------------
def _read_idx(name: str, n: int, images: bool) -> np.ndarray:
    header = 16 if images else 8
    with gzip.open(FMNIST_DIR / name) as fh:
        raw = fh.read(header + n * (784 if images else 1))
    data = np.frombuffer(raw, np.uint8, offset=header)
    return (data.reshape(n, 28, 28, 1) / 255.0).astype(np.float32) if images \
        else data.astype(np.int64)


def fashion_mnist_subset(n_train: int, n_test: int):
    try:
        from xaibench.data.fashion_mnist import load

        ds = load()
        return (ds.x_train[:n_train], ds.y_train[:n_train], ds.x_test[:n_test],
                ds.y_test[:n_test], ds.class_names)
    except Exception:  # loader not there (yet) or not working: read the IDX files directly
        pass
    if not (FMNIST_DIR / "t10k-labels-idx1-ubyte.gz").exists():
        pytest.skip(f"Fashion-MNIST not installed in {FMNIST_DIR}")
    return (_read_idx("train-images-idx3-ubyte.gz", n_train, True),
            _read_idx("train-labels-idx1-ubyte.gz", n_train, False),
            _read_idx("t10k-images-idx3-ubyte.gz", n_test, True),
            _read_idx("t10k-labels-idx1-ubyte.gz", n_test, False),
            tuple(map(str, range(10))))


def test_fit_save_load_on_fashion_mnist(tmp_path):
    x_train, y_train, x_test, y_test, names = fashion_mnist_subset(2000, 500)
    spec = ImageSpec(shape=(28, 28, 1), class_names=tuple(names))
    backend = TorchBackend.from_zoo("fmnist_cnn", spec, seed=0)
    history = backend.fit(x_train, y_train, epochs=1, batch_size=32, lr=1e-3, seed=0)
    assert set(history) == {"loss", "accuracy"} and len(history["loss"]) == 1
    assert not backend.module.training
    scores = backend.predict(x_test)
    accuracy = float((scores.argmax(axis=1) == y_test).mean())
    assert accuracy > 0.6, f"test accuracy {accuracy:.3f} after one epoch on 2000 images"

    path = tmp_path / "ckpt" / "fmnist_cnn.pt"
    backend.save(path)
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == [path.name]
    fresh = TorchBackend.from_zoo("fmnist_cnn", spec, seed=1)
    fresh.load(path)
    np.testing.assert_array_equal(fresh.predict(x_test), scores)

    other = TorchBackend.from_zoo("mlp", spec)
    with pytest.raises(XaibenchError, match="does not match"):
        other.load(path)
    with pytest.raises(XaibenchError, match="no torch checkpoint"):
        fresh.load(tmp_path / "missing.pt")


def test_fit_is_seeded_and_checks_labels():
    xs = images(64, seed=5)
    ys = np.arange(64) % 3
    runs = []
    for _ in range(2):
        backend = TorchBackend.from_zoo("mlp", SPEC, seed=0)
        runs.append((backend.fit(xs, ys, epochs=2, batch_size=16, lr=1e-2, seed=3),
                     backend.predict(xs)))
    assert runs[0][0] == runs[1][0] and len(runs[0][0]["loss"]) == 2
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    with pytest.raises(XaibenchError, match="labels"):
        backend.fit(xs, ys + 1, epochs=1, batch_size=16, lr=1e-2, seed=0)


class Skip(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.relu1 = nn.Conv2d(C, 4, 3, padding=1), nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.dense = nn.Linear(4 * H * W, 3)

    def forward(self, t):
        out = self.relu1(self.conv1(t))
        return self.dense((self.conv2(out) + out).flatten(1))


def test_gradient_layer_bypassed_by_a_skip_connection(x, bg):
    torch.manual_seed(0)
    backend = TorchBackend(Skip(), SPEC)
    with pytest.raises(ConfigError, match="skip connection"):
        backend.explain("gradient", x, 1, background=bg, nsamples=10, layer="conv2")
    att = backend.explain("gradient", x, 1, background=bg, nsamples=10, layer="relu1")
    assert att.layer_values.shape == (4, H, W, 4, 1)
