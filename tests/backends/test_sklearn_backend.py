"""The scikit-learn random forest backend and its native explainer ``tree`` (exact TreeSHAP),
on scikit-learn's bundled breast-cancer (classification) and diabetes (regression) rows."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import shap
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import RandomForestRegressor

from backends.sklearn_backend import SklearnBackend
from xaibench.backend import ImageSpec
from xaibench.errors import ConfigError, UnsupportedModelError, XaibenchError
from xaibench.experiment.config import parse_config

from tests.unit.experiment._tiny import TINY_TOML


def _rows(loader, task: str, names: tuple[str, ...]):
    """(spec, rows (N, 1, F, 1) scaled to [0, 1] as float32, targets) of a bundled dataset."""
    data = loader()
    x = (data.data - data.data.min(0)) / np.ptp(data.data, axis=0)
    spec = ImageSpec((1, x.shape[1], 1), names, feature_names=tuple(data.feature_names),
                     task=task)
    y = data.target.astype(np.int64 if task == "classification" else np.float64)
    return spec, x.astype(np.float32).reshape(len(x), 1, -1, 1), y


@pytest.fixture(scope="module")
def cancer():
    return _rows(load_breast_cancer, "classification", ("malignant", "benign"))


@pytest.fixture(scope="module")
def diabetes():
    return _rows(load_diabetes, "regression", ("progression",))


def _forest(data, seed: int, **params) -> SklearnBackend:
    spec, x, y = data
    backend = SklearnBackend.from_zoo("random_forest", spec, seed=seed, n_estimators=25,
                                      **params)
    backend.fit(x[:300], y[:300], seed=seed)
    return backend


@pytest.fixture(scope="module")
def classifier(cancer, test_seed):
    return _forest(cancer, test_seed)


@pytest.fixture(scope="module")
def regressor(diabetes, test_seed):
    return _forest(diabetes, test_seed)


def test_classifier_scores_are_class_probabilities(classifier, cancer):
    _, x, y = cancer
    scores = classifier.predict(x[300:])
    assert scores.shape == (len(x) - 300, 2) and scores.dtype == np.float32
    assert scores.min() >= 0 and scores.max() <= 1
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(scores, classifier.model.predict_proba(x[300:, 0, :, 0]),
                               atol=1e-7)
    assert np.mean(scores.argmax(axis=1) == y[300:]) > 0.9


def test_regressor_has_one_output(regressor, diabetes):
    _, x, y = diabetes
    scores = regressor.predict(x[300:])
    assert scores.shape == (len(x) - 300, 1)
    residual = ((scores[:, 0] - y[300:]) ** 2).sum()
    assert 1 - residual / ((y[300:] - y[300:].mean()) ** 2).sum() > 0.2  # held-out R²


def test_a_class_missing_from_training_scores_zero(cancer):
    spec, x, y = cancer
    three = ImageSpec(spec.shape, ("a", "b", "c"), feature_names=spec.feature_names)
    backend = SklearnBackend.from_zoo("random_forest", three, n_estimators=5)
    backend.fit(x[:100], y[:100])
    scores = backend.predict(x[100:120])
    assert scores.shape == (20, 3) and np.all(scores[:, 2] == 0)
    attribution = backend.explain("tree", x[100:103], np.full(3, 2), background=x[:10])
    assert np.all(attribution.values == 0) and np.all(attribution.base_values == 0)


def test_thresholds_are_stored_as_float32_without_changing_predictions(diabetes, test_seed):
    spec, x, y = diabetes
    backend = _forest(diabetes, test_seed)
    reference = RandomForestRegressor(n_estimators=25, random_state=test_seed).fit(
        x[:300, 0, :, 0], y[:300])
    probe = np.concatenate([x[:, 0, :, 0], np.random.default_rng(0).random((2000, 10))]) \
        .astype(np.float32)
    np.testing.assert_array_equal(backend.model.predict(probe), reference.predict(probe))
    for estimator in backend.model.estimators_:
        split = estimator.tree_.children_left >= 0
        threshold = estimator.tree_.threshold[split]
        np.testing.assert_array_equal(threshold.astype(np.float32), threshold)


@pytest.mark.parametrize("perturbation", ["interventional", "tree_path_dependent"])
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_tree_attributions_add_up_and_equal_shap(task, perturbation, request, cancer,
                                                 diabetes):
    backend = request.getfixturevalue("classifier" if task == "classification" else "regressor")
    _, x, _ = cancer if task == "classification" else diabetes
    images, background = x[300:340], x[:60]
    attribution = backend.explain("tree", images, 1, background=background,
                                  feature_perturbation=perturbation)
    scale = max(1.0, float(np.abs(attribution.model_outputs).max()))
    # float32 model outputs: round-off of 6e-8 relative
    assert attribution.additivity_gap().max() <= 1e-6 * scale
    explainer = (shap.TreeExplainer(backend.model, background[:, 0, :, 0].astype(np.float64))
                 if perturbation == "interventional" else
                 shap.TreeExplainer(backend.model, feature_perturbation=perturbation))
    phi = np.asarray(explainer.shap_values(images[:, 0, :, 0].astype(np.float64)))
    phi = phi.reshape(len(images), images.shape[2], -1)
    expected = np.take_along_axis(phi, attribution.output_indices[:, None, :], axis=2)
    np.testing.assert_allclose(attribution.values[:, 0, :, 0], expected, rtol=0, atol=1e-12)
    base = np.asarray(explainer.expected_value, np.float64).reshape(-1)
    np.testing.assert_allclose(attribution.base_values,
                               base[attribution.output_indices], rtol=1e-6, atol=1e-7)


def test_tree_counts_one_evaluation_per_row_and_background_row(classifier, cancer):
    _, x, _ = cancer
    attribution = classifier.explain("tree", x[300:304], 1, background=x[:10])
    assert attribution.model_evals == 10 + 4 * 10  # base values, then the joint traversals
    path = classifier.explain("tree", x[300:304], 1, background=x[:10],
                              feature_perturbation="tree_path_dependent")
    assert path.model_evals == 0


def test_unknown_feature_perturbation(classifier, cancer):
    _, x, _ = cancer
    with pytest.raises(ConfigError, match=r"unknown feature_perturbation 'auto'; use one of "
                                          r"interventional, tree_path_dependent"):
        classifier.explain("tree", x[:2], 1, background=x[:3], feature_perturbation="auto")


def test_fit_refuses_epoch_training_params_and_bad_targets(cancer, diabetes):
    spec, x, y = cancer
    backend = SklearnBackend.from_zoo("random_forest", spec, n_estimators=2)
    with pytest.raises(XaibenchError, match="not fitted yet; fit it or load a checkpoint"):
        backend.predict(x[:2])
    with pytest.raises(ConfigError, match=r"one pass: epochs, lr do not apply; remove them"):
        backend.fit(x[:20], y[:20], epochs=5, lr=1e-3)
    with pytest.raises(XaibenchError, match=r"labels must be integers of shape \(20,\)"):
        backend.fit(x[:20], y[:20].astype(float))
    with pytest.raises(XaibenchError, match=r"labels must be in 0..1"):
        backend.fit(x[:20], y[:20] + 1)
    rspec, rx, ry = diabetes
    regressor = SklearnBackend.from_zoo("random_forest", rspec, n_estimators=2)
    with pytest.raises(XaibenchError, match=r"regression targets must be 20 finite numbers"):
        regressor.fit(rx[:20], np.where(np.arange(20) == 3, np.nan, ry[:20]))


def test_fit_is_seeded(cancer):
    spec, x, y = cancer
    scores = []
    for seed in (1, 1, 2):
        backend = SklearnBackend.from_zoo("random_forest", spec, n_estimators=3)
        backend.fit(x[:200], y[:200], seed=seed)
        scores.append(backend.predict(x[200:]))
    np.testing.assert_array_equal(scores[0], scores[1])
    assert not np.array_equal(scores[0], scores[2])


def test_save_load_round_trip_and_foreign_pickles(classifier, cancer, diabetes, tmp_path):
    spec, x, _ = cancer
    path = tmp_path / "forest.ckpt"
    classifier.save(path)
    fresh = SklearnBackend.from_zoo("random_forest", spec)
    fresh.load(path)
    np.testing.assert_array_equal(fresh.predict(x), classifier.predict(x))
    with pytest.raises(XaibenchError, match=r"holds a RandomForestClassifier with 30 features; "
                                            r"the model is a RandomForestRegressor with 10"):
        SklearnBackend.from_zoo("random_forest", diabetes[0]).load(path)
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps(print))
    with pytest.raises(XaibenchError, match=r"refers to builtins.print, which is not part of a "
                                            r"scikit-learn random forest"):
        fresh.load(evil)
    with pytest.raises(XaibenchError, match="no sklearn checkpoint at"):
        fresh.load(tmp_path / "missing.ckpt")


def test_a_forest_has_no_weight_tensors(classifier):
    assert not SklearnBackend.has_weight_tensors and classifier.nonfinite_weights() == []
    for call in (classifier.get_weights, lambda: classifier.set_weights({}),
                 classifier.layer_names, lambda: classifier.randomized(1)):
        with pytest.raises(UnsupportedModelError, match=r"is a set of trees, not weight "
                                                        r"tensors: it cannot .*mprt"):
            call()


def test_user_model_files_are_refused(cancer, tmp_path):
    with pytest.raises(ConfigError, match=r"loads no user model files .* architecture = "
                                          r"\"random_forest\""):
        SklearnBackend.from_user(cancer[0], weights=tmp_path / "forest.pkl")


def test_bad_architecture_params(cancer):
    with pytest.raises(ConfigError, match=r"n_estimators >= 1"):
        SklearnBackend.from_zoo("random_forest", cancer[0], n_estimators=0)
    with pytest.raises(ConfigError, match=r"unknown param 'depth' — did you mean 'max_depth'"):
        SklearnBackend.from_zoo("random_forest", cancer[0], depth=3)


# --- config validation ---------------------------------------------------------------------------
def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_tree_is_refused_for_torch_naming_the_backends_that_have_it():
    text = _edit(TINY_TOML, 'name = "deep"', 'name = "tree"')
    with pytest.raises(ConfigError, match=r"backend 'torch' \(\[\[models\]\] #1\) cannot run "
                                          r"explainer 'tree' \(backends that can: sklearn\)"):
        parse_config(text)


def test_a_forest_refuses_epoch_training_params():
    text = _edit(TINY_TOML, 'backend = "torch"\narchitecture = "fmnist_cnn"',
                 'backend = "sklearn"\narchitecture = "random_forest"')
    with pytest.raises(ConfigError, match=r"backend 'sklearn' fits in one pass, so epochs, "
                                          r"batch_size, lr do not apply; remove them"):
        parse_config(text)
    text = _edit(text, "train = { epochs = 1, batch_size = 32, lr = 1e-2 }",
                 "params = { n_estimators = 10, max_depth = 4 }")
    with pytest.raises(ConfigError, match=r"cannot run explainer 'deep' \(backends that can: "
                                          r"flax, keras, torch\); it runs: edge, partition, "
                                          r"permutation, random, tree"):
        parse_config(text)
    config = parse_config(_edit(text, 'name = "deep"', 'name = "tree"'))
    assert config.models[0].train == {} and config.models[0].params == {"n_estimators": 10,
                                                                         "max_depth": 4}
    with pytest.raises(ConfigError, match=r"'feature_perturbation' must be"):
        parse_config(_edit(text, 'name = "deep"',
                           'name = "tree"\nparams = { feature_perturbation = "auto" }'))


def test_an_explainer_restricted_to_backends_explains_only_their_models():
    from xaibench.experiment.plan import make_plan

    forest = '[[models]]\nbackend = "sklearn"\narchitecture = "random_forest"\n\n'
    text = _edit(TINY_TOML, "[[explainers]]", f"{forest}[[explainers]]")
    with pytest.raises(ConfigError, match=r"cannot run explainer 'tree' \(backends that can: "
                                          r"sklearn\); .* or restrict the explainer: backends = "
                                          r"\[\"sklearn\"\]"):
        parse_config(_edit(text, 'name = "deep"', 'name = "tree"'))
    config = parse_config(_edit(_edit(text, 'name = "deep"',
                                      'name = "deep"\nbackends = ["torch"]'),
                                '[[explainers]]', '[[explainers]]\nname = "tree"\n'
                                'backends = ["sklearn"]\n\n[[explainers]]'))
    cells = {(cell.model.backend, cell.explainer) for cell in make_plan(config).cells}
    assert cells == {("torch", "partition"), ("sklearn", "partition"), ("torch", "deep"),
                     ("sklearn", "tree")}
    shared = parse_config(_edit(text, 'name = "deep"',
                                'name = "deep"\nbackends = ["torch", "keras", "flax"]'))
    assert {(cell.model.backend, cell.explainer) for cell in make_plan(shared).cells
            if cell.explainer == "deep"} == {("torch", "deep")}  # keras, flax: not in this grid
    for backends, match in ((["keras"], r"backends lists 'keras', which no \[\[models\]\] uses "
                                        r"\(they use: sklearn, torch\)"),
                            (["sklearm"], r"unknown backend 'sklearm' — did you mean 'sklearn'"),
                            (["torch", "torch"], r"'backends' lists a backend twice")):
        with pytest.raises(ConfigError, match=match):
            parse_config(_edit(text, 'name = "deep"',
                               f'name = "deep"\nbackends = {backends}'.replace("'", '"')))


def test_metrics_that_randomise_the_model_are_refused_for_a_forest():
    from xaibench import registry

    entry = registry.backends.entry("sklearn")
    assert entry.weight_tensors == SklearnBackend.has_weight_tensors is False
    assert set(entry.native_explainers) == set(SklearnBackend.native_methods)
    text = _edit(_edit(TINY_TOML, 'backend = "torch"\narchitecture = "fmnist_cnn"',
                       'backend = "sklearn"\narchitecture = "random_forest"'),
                 "train = { epochs = 1, batch_size = 32, lr = 1e-2 }\n", "")
    text = _edit(_edit(text, 'name = "deep"', 'name = "tree"'), 'metrics = ["additivity"]',
                 'metrics = ["additivity", "emprt"]')
    with pytest.raises(ConfigError, match=r"'metrics': emprt re-initialises the model's layers, "
                                          r"but backend 'sklearn' \(\[\[models\]\] #1\) has no "
                                          r"weight tensors"):
        parse_config(text)
