"""The Flax backend: jitted prediction, native DeepLIFT and expected gradients, life cycle.

Parity with shap's PyTorch explainers on identical weights is in ``test_parity.py``; here the
JAX explainers are checked against closed forms and invariants on tiny random-weight models.
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
fnn = pytest.importorskip("flax.linen")
jnp = jax.numpy

from backends import _jax_deeplift  # noqa: E402
from backends.flax_backend import FlaxBackend, _buckets, _pieces  # noqa: E402
from xaibench import ImageSpec  # noqa: E402
from xaibench.errors import ConfigError, UnsupportedModelError, XaibenchError  # noqa: E402

SPEC = ImageSpec(shape=(6, 6, 1), class_names=("a", "b", "c"))


def images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *SPEC.shape), dtype=np.float32)


def backend_of(module: fnn.Module, seed: int = 0, **kwargs) -> FlaxBackend:
    variables = module.init(jax.random.key(seed), jnp.zeros((1, *SPEC.shape)))
    return FlaxBackend(module, variables, SPEC, **kwargs)


@pytest.fixture(scope="module")
def cnn() -> FlaxBackend:
    return FlaxBackend.from_zoo("fmnist_cnn", SPEC, seed=0, conv1=8, conv2=4)


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return images(3, seed=1)


@pytest.fixture(scope="module")
def bg() -> np.ndarray:
    return images(6, seed=2)


# --- prediction ---------------------------------------------------------------------------------
def test_predict_matches_apply_for_every_batch_size_without_recompiling():
    backend = backend_of(FlaxBackend.from_zoo("mlp", SPEC, hidden=16).module, batch_size=16)
    x = images(40, seed=3)
    direct = np.asarray(backend.module.apply(backend.variables, x))
    for n in (1, 2, 3, 5, 16, 17, 40):
        np.testing.assert_allclose(backend.predict(x[:n]), direct[:n], rtol=1e-6, atol=1e-6)
    assert backend._apply._cache_size() == 5  # one compiled program per bucket: 1, 2, 4, 8, 16


def test_buckets_cover_up_to_the_batch_size():
    assert _buckets(256) == (1, 2, 4, 8, 16, 32, 48, 50, *range(64, 257, 16))
    assert _buckets(128) == (1, 2, 4, 8, 16, 32, 48, 50, 64, 80, 96, 112, 128)
    assert _buckets(50) == (1, 2, 4, 8, 16, 32, 48, 50)
    assert _buckets(3) == (1, 2, 3)
    assert _buckets(1) == (1,)


def test_a_batch_is_cut_into_buckets_and_padded_only_when_that_wastes_little():
    assert _pieces(50, 128) == (50,)  # the explainers' batch runs in one call
    assert _pieces(56, 128) == (50, 8)  # padding to 64 would waste 8 of 56 rows
    assert _pieces(127, 128) == (128,)  # one padded row
    assert _pieces(6, 128) == (4, 2)
    assert _pieces(255, 256) == (256,)
    assert _pieces(200, 256) == (208,)  # 8 padded rows: 4 % of the batch
    assert _pieces(33, 128) == (32, 1)
    assert _pieces(45, 50) == (48,)
    assert _pieces(40, 50) == (32, 8)


def test_constructor_rejects_a_model_with_the_wrong_output():
    with pytest.raises(XaibenchError, match=r"\(N, 3\) scores.*\(1, 5\)"):
        backend_of(fnn.Sequential([lambda v: v.reshape(v.shape[0], -1), fnn.Dense(5)]))
    with pytest.raises(XaibenchError, match="flax.linen.Module"):
        FlaxBackend(object(), {}, SPEC)


def test_from_zoo_is_seeded_and_validates_names():
    a, b = (FlaxBackend.from_zoo("fmnist_cnn", SPEC, seed=s, conv1=4, conv2=2) for s in (5, 5))
    c = FlaxBackend.from_zoo("fmnist_cnn", SPEC, seed=6, conv1=4, conv2=2)
    x = images(2, seed=0)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    assert not np.allclose(a.predict(x), c.predict(x))
    assert a.variables["params"]["conv1"]["kernel"].shape == (3, 3, 1, 4)
    with pytest.raises(ConfigError, match="did you mean 'fmnist_cnn'"):
        FlaxBackend.from_zoo("fmnist_cn", SPEC)
    with pytest.raises(ConfigError, match="filters"):
        FlaxBackend.from_zoo("fmnist_cnn", SPEC, filters=3)


# --- DeepLIFT -----------------------------------------------------------------------------------
def test_deep_equals_the_rescale_rule_computed_by_hand(x, bg):
    """f = w2 . relu(W1 x + b1) + b2: φ_i = mean_b Σ_j w2_kj (Δh_j / Δz_j) W1_ij (x_i − b_i)."""
    backend = FlaxBackend.from_zoo("mlp", SPEC, seed=1, hidden=7)
    p = {k: {n: np.asarray(v, np.float64) for n, v in d.items()}
         for k, d in backend.variables["params"].items()}
    w1, b1, w2 = p["dense1"]["kernel"], p["dense1"]["bias"], p["dense2"]["kernel"]
    xs, refs = x.reshape(len(x), -1).astype(np.float64), bg.reshape(len(bg), -1).astype(np.float64)
    expected = np.zeros((len(x), xs.shape[1], 3))
    for n, xi in enumerate(xs):
        for r in refs:
            zx, zr = xi @ w1 + b1, r @ w1 + b1
            dz = zx - zr
            m = np.where(np.abs(dz) < 1e-6, (zr > 0).astype(float),
                         (np.maximum(zx, 0) - np.maximum(zr, 0)) / np.where(dz == 0, 1, dz))
            expected[n] += ((w1 * m) @ w2) * (xi - r)[:, None] / len(refs)
    values, base = backend.native_explain("deep", x, np.tile(np.arange(3), (len(x), 1)),
                                          background=bg)
    np.testing.assert_allclose(values.reshape(len(x), -1, 3), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(base[0], backend.predict(bg).mean(axis=0), rtol=1e-5, atol=1e-6)


class _Activations(fnn.Module):
    """Every supported kind of operation between two convolutions and a dense head."""

    @fnn.compact
    def __call__(self, v):
        h = fnn.Conv(4, (3, 3), padding="SAME")(v)
        h = fnn.BatchNorm(use_running_average=True)(h)
        h = fnn.leaky_relu(h) + fnn.Conv(4, (1, 1))(v)             # residual add
        h = fnn.max_pool(fnn.elu(h), (2, 2), strides=(2, 2))
        h = fnn.avg_pool(fnn.gelu(fnn.Conv(4, (3, 3), padding="SAME")(h)), (2, 2),
                         padding="SAME")
        h = jnp.tanh(fnn.silu(h)) * 2.0
        pooled = jnp.max(fnn.softplus(h), axis=(1, 2))               # global max pooling
        h = jnp.concatenate([fnn.sigmoid(h.reshape(h.shape[0], -1)), pooled], axis=1)
        return fnn.log_softmax(fnn.Dense(3)(h))


def test_deep_is_additive_for_every_supported_operation(x, bg):
    backend = backend_of(_Activations(), seed=3)
    attribution = backend.explain("deep", x, 3, background=bg)
    scale = np.abs(attribution.model_outputs - attribution.base_values).max()
    assert scale > 1e-3
    assert attribution.additivity_gap().max() <= 1e-5 * max(1.0, scale)
    kinds = {type(s).__name__ for s in backend._deeplift_plan.steps}
    assert kinds == {"_Linear", "_Block", "_Max"}


def test_deep_max_rule_routes_to_the_maxima_like_shap():
    """max over two inputs: the winner's share of Δout goes to the position of each side's max."""
    plan = _jax_deeplift.build_plan(lambda p, v: jnp.max(v, axis=1), None, (2,))
    x, b = jnp.array([[3.0, 1.0]]), jnp.array([[0.0, 2.0]])
    (out_x, out_b), pullback = jax.vjp(lambda u, w: plan.pair(None, u, w), x, b)
    multipliers = pullback((jnp.ones(1), jnp.ones(1)))[1]
    # x's max (3 at position 0) beats b's (2 at position 1): x's side routes 3 − 2 = 1 to
    # position 0, b's side routes 2 − 3 clipped by the cross max (0) to position 1
    np.testing.assert_allclose(multipliers * (x - b), [[1.0, 0.0]], atol=1e-7)
    np.testing.assert_allclose(out_x - out_b, [1.0])


def test_deep_uses_the_gradient_where_the_input_difference_vanishes():
    """relu at Δin = 0 (x = b = 0 in a zero-bias layer): the gradient (0 at 0), not Δ/Δ."""
    plan = _jax_deeplift.build_plan(lambda p, v: jnp.sum(jax.nn.relu(v) * p, axis=1),
                                    jnp.array([1.0, 1.0]), (2,))
    x, b = jnp.array([[0.0, 2.0]]), jnp.array([[0.0, -1.0]])
    _, pullback = jax.vjp(lambda u, w: plan.pair(jnp.array([1.0, 1.0]), u, w), x, b)
    np.testing.assert_allclose(pullback((jnp.ones(1), jnp.ones(1)))[1], [[0.0, 2.0 / 3.0]])


class _Gated(fnn.Module):
    @fnn.compact
    def __call__(self, v):
        h = fnn.Conv(2, (3, 3))(v)
        return fnn.Dense(3)((h * fnn.sigmoid(fnn.Conv(2, (3, 3))(v))).reshape(v.shape[0], -1))


class _Sorted(fnn.Module):
    @fnn.compact
    def __call__(self, v):
        return fnn.Dense(3)(jnp.sort(v.reshape(v.shape[0], -1), axis=1))


@pytest.mark.parametrize("module, operation", [(_Gated(), "mul"), (_Sorted(), "sort")])
def test_deep_names_an_unsupported_operation_and_where_it_is(module, operation, x, bg):
    backend = backend_of(module)
    with pytest.raises(UnsupportedModelError, match=rf"operation '{operation}' \(module "
                                                    rf"{type(module).__name__}, .*"
                                                    rf"test_flax_backend\.py:\d+"):
        backend.explain("deep", x, 1, background=bg)
    backend.explain("gradient", x, 1, background=bg, nsamples=4)  # gradients still work


def test_native_parameters_are_validated(cnn, x, bg):
    with pytest.raises(ConfigError, match="takes background, check_additivity"):
        cnn.native_explain("deep", x, np.zeros((3, 1), int), background=bg, nsamples=3)
    with pytest.raises(ConfigError, match="needs background"):
        cnn.native_explain("gradient", x, np.zeros((3, 1), int))
    with pytest.raises(ConfigError, match="background is empty"):
        cnn.explain("deep", x, 1, background=bg[:0])
    with pytest.raises(ConfigError, match="nsamples must be >= 1"):
        cnn.explain("gradient", x, 1, background=bg, nsamples=0)


# --- expected gradients -------------------------------------------------------------------------
def test_gradient_is_exact_for_a_linear_model_and_one_reference(x, bg):
    module = fnn.Sequential([lambda v: v.reshape(v.shape[0], -1), fnn.Dense(3)])
    backend = backend_of(module)
    kernel = np.asarray(backend.variables["params"]["layers_1"]["kernel"])  # (36, 3)
    attribution = backend.explain("gradient", x, np.array([2, 0, 1]), background=bg[:1],
                                  nsamples=5)
    expected = kernel[:, [2, 0, 1]].T * (x - bg[0]).reshape(len(x), -1)
    np.testing.assert_allclose(attribution.values[..., 0].reshape(len(x), -1), expected,
                               rtol=1e-5, atol=1e-6)
    assert attribution.additivity_gap().max() < 1e-5
    # local smoothing perturbs the explained input x̃ = x + ε, so (x̃ − b) no longer sums exactly
    smoothed = backend.explain("gradient", x, np.array([2, 0, 1]), background=bg[:1],
                               nsamples=5, local_smoothing=0.5)
    assert smoothed.additivity_gap().min() > 1e-4


def test_gradient_converges_to_integrated_gradients(cnn, x, bg):
    """With one reference, expected gradients is a Monte Carlo estimate of integrated gradients."""
    ref, target = bg[:1], 1
    t = (np.arange(400) + 0.5) / 400  # midpoint rule
    path = ref + t[:, None, None, None] * (x[:1] - ref)
    grads = jax.grad(lambda p: cnn.module.apply(cnn.variables, p)[:, target].sum())(path)
    integrated = np.asarray(grads).mean(axis=0) * (x[0] - ref[0])
    attribution = cnn.explain("gradient", x[:1], np.array([target]), background=ref,
                              nsamples=3000, seed=4)
    estimate = attribution.values[0, ..., 0]
    assert np.corrcoef(estimate.ravel(), integrated.ravel())[0, 1] > 0.995
    assert np.abs(estimate - integrated).max() < 0.1 * np.abs(integrated).max()


def test_gradient_is_seeded_and_independent_of_chunking(cnn, x, bg):
    targets = np.array([[0, 2], [1, 0], [2, 1]])
    first = cnn.native_explain("gradient", x, targets, background=bg, nsamples=37, seed=7)[0]
    again = cnn.native_explain("gradient", x, targets, background=bg, nsamples=37, seed=7)[0]
    other = cnn.native_explain("gradient", x, targets, background=bg, nsamples=37, seed=8)[0]
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    small_chunks = FlaxBackend(cnn.module, cnn.variables, SPEC, batch_size=8)
    np.testing.assert_allclose(
        small_chunks.native_explain("gradient", x, targets, background=bg, nsamples=37,
                                    seed=7)[0], first, rtol=1e-5, atol=1e-7)
    # each column is the explanation of that column's class alone (same draws per image)
    single = cnn.native_explain("gradient", x, targets[:, 1:], background=bg, nsamples=37,
                                seed=7)[0]
    np.testing.assert_allclose(single[..., 0], first[..., 1], rtol=1e-5, atol=1e-7)


def test_gradient_local_smoothing_adds_noise_to_the_input(cnn, x, bg):
    targets = np.zeros((3, 1), int)
    plain = cnn.native_explain("gradient", x, targets, background=bg, nsamples=50, seed=0)[0]
    smooth = cnn.native_explain("gradient", x, targets, background=bg, nsamples=50, seed=0,
                                local_smoothing=0.5)[0]
    assert not np.allclose(plain, smooth)
    tiny = cnn.native_explain("gradient", x, targets, background=bg, nsamples=50, seed=0,
                              local_smoothing=1e-7)[0]
    np.testing.assert_allclose(tiny, plain, rtol=1e-3, atol=1e-6)


def test_gradient_at_a_layer(cnn, x, bg):
    attribution = cnn.explain("gradient", x, 2, background=bg, nsamples=200, layer="conv2")
    assert attribution.layer_values.shape == (3, 6, 6, 4, 2)
    assert attribution.values.shape == (3, 6, 6, 1, 2)
    np.testing.assert_allclose(attribution.values.sum(axis=(1, 2, 3)),
                               attribution.layer_values.sum(axis=(1, 2, 3)), rtol=1e-6)
    scale = np.abs(attribution.model_outputs - attribution.base_values).max()
    assert attribution.additivity_gap().max() < 0.1 * scale
    by_index = cnn.explain("gradient", x, 2, background=bg, nsamples=20, layer=1)
    by_name = cnn.explain("gradient", x, 2, background=bg, nsamples=20, layer="conv2")
    np.testing.assert_array_equal(by_index.layer_values, by_name.layer_values)
    with pytest.raises(ConfigError, match="did you mean 'conv2'"):
        cnn.explain("gradient", x, 1, background=bg, layer="conv3")
    with pytest.raises(ConfigError, match="spatial"):
        cnn.explain("gradient", x, 1, background=bg, layer="dense")
    with pytest.raises(ConfigError, match="out of range"):
        cnn.explain("gradient", x, 1, background=bg, layer=3)


# --- life cycle ---------------------------------------------------------------------------------
def test_layer_names_and_randomized(cnn, x):
    assert cnn.layer_names() == ["conv1", "conv2", "dense"]
    top = cnn.randomized(1, seed=3)
    params, new = cnn.variables["params"], top.variables["params"]
    for name in ("conv1", "conv2"):
        np.testing.assert_array_equal(new[name]["kernel"], params[name]["kernel"])
    assert not np.allclose(new["dense"]["kernel"], params["dense"]["kernel"])
    assert not np.allclose(top.predict(x), cnn.predict(x))
    np.testing.assert_array_equal(cnn.randomized(0).predict(x), cnn.predict(x))
    with pytest.raises(ConfigError, match="n_layers must be in 0..3"):
        cnn.randomized(4)


def test_fit_learns_a_separable_task_reproducibly():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    x = rng.normal(0.3, 0.1, (300, *SPEC.shape)).astype(np.float32)
    x[np.arange(300), y * 2, y * 2, 0] += 1.0  # the class is a bright pixel's position
    x = np.clip(x, *SPEC.value_range)
    histories, predictions = [], []
    for _ in range(2):
        backend = FlaxBackend.from_zoo("mlp", SPEC, seed=0, hidden=16)
        histories.append(backend.fit(x, y, epochs=5, batch_size=32, lr=1e-2, seed=1))
        predictions.append(backend.predict(x))
    history = histories[0]
    assert set(history) == {"loss", "accuracy"} and len(history["loss"]) == 5
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["accuracy"][-1] > 0.95
    assert np.mean(predictions[0].argmax(axis=1) == y) > 0.95
    assert histories[0] == histories[1]
    np.testing.assert_array_equal(predictions[0], predictions[1])
    with pytest.raises(XaibenchError, match=r"labels must be in 0\.\.2"):
        backend.fit(x, y + 1, epochs=1, seed=0)
    # the reported loss is the mean over the images (the padded last batch does not count)
    still = FlaxBackend.from_zoo("mlp", SPEC, seed=0, hidden=16)
    logits = still.predict(x).astype(np.float64)
    initial = np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(300), y])
    loss = still.fit(x, y, epochs=1, batch_size=128, lr=1e-9, seed=1)["loss"][0]
    assert loss == pytest.approx(initial, rel=1e-5)


def test_save_load_round_trip_and_errors(cnn, x, tmp_path):
    path = tmp_path / "sub" / "weights.msgpack"
    cnn.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["weights.msgpack"]  # no temp file left
    other = FlaxBackend.from_zoo("fmnist_cnn", SPEC, seed=9, conv1=8, conv2=4)
    other.load(path)
    np.testing.assert_array_equal(other.predict(x), cnn.predict(x))
    wider = FlaxBackend.from_zoo("fmnist_cnn", SPEC, conv1=16, conv2=4)
    with pytest.raises(XaibenchError, match=r"shape mismatch.*params/conv1/kernel: file "
                                            r"\(3, 3, 1, 8\) vs model \(3, 3, 1, 16\)"):
        wider.load(path)
    with pytest.raises(XaibenchError, match="missing.*unexpected"):
        FlaxBackend.from_zoo("mlp", SPEC).load(path)
    (tmp_path / "bad").write_bytes(b"not msgpack")
    with pytest.raises(XaibenchError, match="cannot read flax checkpoint"):
        cnn.load(tmp_path / "bad")
    with pytest.raises(XaibenchError, match="no flax checkpoint"):
        cnn.load(tmp_path / "absent")
