"""Every registered backend and explainer passes the same suite (xaibench.testing)."""

from __future__ import annotations

import numpy as np
import pytest

from xaibench import ImageSpec
from xaibench.errors import ConfigError, XaibenchError
from xaibench.explain.maskers import make_masker
from xaibench.registry import backends, explainers, models
from xaibench.testing import check_backend, check_explainer, sample_images

TINY = ImageSpec(shape=(8, 8, 1), class_names=("a", "b", "c"))
#: tabular rows of 6 features
TABULAR = ImageSpec(shape=(1, 6, 1), class_names=("a", "b", "c"),
                    feature_names=tuple(f"f{i}" for i in range(6)))
#: zoo architectures under test -> (image spec, architecture params, explainers checked);
#: the model-agnostic explainers do not depend on the architecture and run on fmnist_cnn only
#: (cifar_convnet needs images of 24..47 pixels: its pools reduce 32x32 to 1x1)
ARCHITECTURES = {
    "fmnist_cnn": (TINY, {}, None),
    "cifar_convnet": (ImageSpec(shape=(24, 24, 3), class_names=("a", "b", "c")), {"width": 1},
                      ("deep",)),
    "random_forest": (TABULAR, {"n_estimators": 10}, ("tree", "partition", "permutation")),
    "tabular_mlp": (ImageSpec(shape=(1, 6, 1), class_names=("a", "b", "c"),
                              value_range=(-3.0, 3.0), feature_names=tuple("abcdef")),
                    {"width": 4, "depth": 2}, ("deep", "gradient", "partition", "permutation")),
}
#: architectures that predict only once fitted (a forest has no initial state): they are
#: fitted on random rows whose label is the argmax of a fixed linear function
FIT_FIRST = {"random_forest"}
#: the masker of the model-agnostic explainers on tabular rows (it draws from background rows)
TABULAR_MASKER = "partition"

#: explainer -> (params, additive?, tolerance); background is added for native methods and
#: permutation's max_evals is 2M + 1 for M features
EXPLAINER_CASES = {
    "deep": ({}, True, 1e-4),
    "gradient": ({"nsamples": 400, "seed": 0}, True, 0.2),
    "partition": ({"masker": "blur(3,3)", "max_evals": 200}, True, 1e-4),
    "permutation": ({"masker": "blur(3,3)"}, True, 1e-4),
    "random": ({"seed": 0}, False, 0.0),
    "edge": ({}, False, 0.0),
    "cam": ({}, False, 0.0),
    "gradcam": ({}, False, 0.0),
    "gradcam_pp": ({"layer": "conv1"}, False, 0.0),
    "tree": ({}, True, 1e-6),
}

#: explainers that need a model ending in global average pooling (the zoo's head="gap")
POOLED_HEAD = {"cam"}


@pytest.fixture(scope="module", params=[(b, a) for a in ARCHITECTURES for b in backends
                                        if b in models.get(a).frameworks],
                ids=lambda case: f"{case[0]}-{case[1]}")
def case(request):
    """(backend name, architecture) for every backend that implements the architecture."""
    return request.param


@pytest.fixture(scope="module")
def backend(case):
    name, architecture = case
    entry = backends.entry(name)
    if not entry.available:
        pytest.skip(f"{entry.framework} not installed")
    spec, params, _ = ARCHITECTURES[architecture]
    backend = backends.get(name).from_zoo(architecture, spec, seed=0, **params)
    if architecture in FIT_FIRST:
        x = sample_images(backend, 200, seed=3)
        weights = np.random.default_rng(4).normal(size=(int(np.prod(spec.shape)),
                                                        spec.n_classes))
        backend.fit(x, (x.reshape(len(x), -1) @ weights).argmax(axis=1), seed=0)
    return backend


@pytest.fixture(scope="module")
def pooled_backend(backend):
    """The backend's framework, fmnist_cnn with a global-average-pooling head."""
    return type(backend).from_zoo("fmnist_cnn", TINY, seed=0, head="gap")


def test_every_explainer_has_a_case():
    assert set(explainers) == set(EXPLAINER_CASES)


def test_backend_conformance(backend):
    check_backend(backend)


@pytest.mark.parametrize("method", sorted(EXPLAINER_CASES))
def test_explainer_conformance(case, backend, method, request):
    if explainers.entry(method).native and method not in backend.native_methods:
        inputs = ({"background": sample_images(backend, 2)}
                  if "background" in explainers.entry(method).consumes else {})
        with pytest.raises(ConfigError, match=f"does not implement explainer '{method}'"):
            backend.explain(method, sample_images(backend, 1), 1, **inputs)
        return
    checked = ARCHITECTURES[case[1]][2]
    if checked is not None and method not in checked:
        pytest.skip(f"'{method}' is checked on fmnist_cnn; it does not depend on the model")
    params, additive, atol = EXPLAINER_CASES[method]
    if method in POOLED_HEAD:
        backend = request.getfixturevalue("pooled_backend")
    if method == "permutation":
        params = {**params, "max_evals": 2 * int(np.prod(backend.spec.shape)) + 1}
    background = None
    if "background" in explainers.entry(method).consumes:
        background = sample_images(backend, 10, seed=2)
        params = {**params, "background": background}
    if backend.spec.is_tabular and "masker" in params:
        background = sample_images(backend, 10, seed=2)
        params = {**params, "masker": make_masker(TABULAR_MASKER, backend.spec.shape,
                                                  background)}
    attribution = check_explainer(backend, method, additive=additive, atol=atol, **params)
    assert attribution.method == method
    assert np.abs(attribution.values).sum() > 0
    if background is not None:  # base values: mean outputs over the background
        expected = backend.predict(background).astype(np.float64).mean(axis=0)
        # native methods average the outputs here; a tabular masker's shap explainer does it
        # itself (float32 scores summed in another order)
        rtol = 0.0 if method in backend.native_methods else 1e-6
        np.testing.assert_allclose(attribution.base_values, expected[attribution.output_indices],
                                   rtol=rtol, atol=0.0)
        assert attribution.model_evals > len(background)
    elif method in backend.native_methods:  # class activation maps: no reference, base 0
        np.testing.assert_array_equal(attribution.base_values, 0.0)


@pytest.mark.parametrize("method", ["deep", "gradient", "tree"])
def test_native_inputs_are_checked_before_the_model_runs(backend, method):
    if method not in backend.native_methods:
        pytest.skip(f"backend '{backend.name}' declares no '{method}'")
    x, bg = sample_images(backend, 2, seed=1), sample_images(backend, 3, seed=2)
    targets = np.zeros((2, 1), np.int64)
    evals = backend.n_evals
    for params, error, message in [({}, ConfigError, "needs background"),
                                   ({"background": bg[:0]}, ConfigError, "background is empty"),
                                   ({"background": bg[..., :0]}, XaibenchError, "expected images"),
                                   ({"background": bg, "bogus": 1}, ConfigError,
                                    rf"'{method}' \({backend.name}\) got parameters \['bogus'\]; "
                                    r"it takes background")]:
        with pytest.raises(error, match=message):
            backend.native_explain(method, x, targets, **params)
    with pytest.raises(XaibenchError, match=r"output_indices must be \(2, K\)"):
        backend.native_explain(method, x, targets[:1], background=bg)
    assert backend.n_evals == evals
