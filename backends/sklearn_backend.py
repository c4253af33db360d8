"""scikit-learn backend: a random forest behind the numpy NHWC :class:`Backend` API.

A model input of shape (H, W, C) is one row of H·W·C features (tabular rows travel as
(1, F, 1)). Scores are ``predict_proba`` — class *probabilities* — for a classifier and the
single predicted value for a regressor, so every explainer (``tree`` and the model-agnostic
ones) attributes the same output space.

The native explainer ``tree`` is shap's ``TreeExplainer`` (exact TreeSHAP). Its default,
``feature_perturbation = "interventional"``, explains against the background rows the runner
supplies: the value function is E_background[f(x_S, z_rest)], the base value the mean model
output over the background — the same game the permutation and partition explainers play with
an independent masker on that background, so their attributions are directly comparable.
``"tree_path_dependent"`` instead uses the trees' training cover as the reference (no
background; base value: the mean training output); the runner's background is then unused.

A forest is a set of trees, not weight tensors: it fits in one pass (``epochs``,
``batch_size``, ``lr`` do not apply — the registry declares ``epoch_training = False``), and it
cannot export or import weights or be randomised layer by layer
(:attr:`Backend.has_weight_tensors` is False; those methods raise UnsupportedModelError).

shap's interventional TreeSHAP (``tree_shap_indep`` in its C++ extension, shap 0.51) compares
features with thresholds cast to float32 and indexes nodes with 16-bit integers. scikit-learn
splits at float64 midpoints of float32 values, so a row holding the float32 rounding of a
threshold goes one way in scikit-learn and the other in shap (measured: Σφ off by 3.4 on
diabetes targets around 150). The backend therefore stores every threshold t as the largest
float32 ≤ t (:func:`_float32_thresholds`): for float32 inputs x ≤ t exactly when x ≤ that
value, so predictions are unchanged and shap reads the thresholds exactly. Trees of more than
:data:`MAX_TREE_NODES` nodes are refused (limit max_depth).

Checkpoints are pickles. Unpickling can run code, so :meth:`SklearnBackend.load` only resolves
the classes a scikit-learn forest is made of (:data:`_CHECKPOINT_CLASSES`) and is meant for the
checkpoints this project writes into its own cache (verified against their SHA-256 sidecar);
never point it at a file from elsewhere.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from xaibench._files import replaced_atomically
from xaibench.backend import Backend, ImageSpec, Weights
from xaibench.errors import ConfigError, UnsupportedModelError, XaibenchError

#: the ``feature_perturbation`` values of the ``tree`` explainer, the default first
FEATURE_PERTURBATIONS = ("interventional", "tree_path_dependent")

#: TreeSHAP is exact: Σφ may miss f(x) − base by round-off only (relative to max(1, |f|))
TREE_ADDITIVITY_RTOL = 1e-6

#: (module, name) of every global a forest's pickle may refer to
_CHECKPOINT_CLASSES = frozenset({
    ("sklearn.ensemble._forest", "RandomForestClassifier"),
    ("sklearn.ensemble._forest", "RandomForestRegressor"),
    ("sklearn.tree._classes", "DecisionTreeClassifier"),
    ("sklearn.tree._classes", "DecisionTreeRegressor"),
    ("sklearn.tree._tree", "Tree"),
    ("numpy", "dtype"), ("numpy", "ndarray"),
    *((f"{core}.multiarray", name) for core in ("numpy._core", "numpy.core")
      for name in ("scalar", "_reconstruct")),
    *((f"{core}.numeric", "_frombuffer") for core in ("numpy._core", "numpy.core")),
})

#: shap's interventional TreeSHAP indexes the nodes of a tree with 16-bit integers
MAX_TREE_NODES = 2**15 - 1

_Forest = RandomForestClassifier | RandomForestRegressor


def _float32_thresholds(forest: _Forest) -> None:
    """Replace every split threshold t of the fitted ``forest`` by the largest float32 ≤ t
    (predictions on float32 inputs are unchanged; see the module docstring)."""
    for estimator in forest.estimators_:
        state = estimator.tree_.__getstate__()
        nodes = state["nodes"].copy()
        threshold = nodes["threshold"]
        rounded = threshold.astype(np.float32)
        above = rounded.astype(np.float64) > threshold
        rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
        nodes["threshold"] = np.where(nodes["left_child"] < 0, threshold, rounded)
        estimator.tree_.__setstate__({**state, "nodes": nodes})


class _ForestUnpickler(pickle.Unpickler):
    """Resolves only :data:`_CHECKPOINT_CLASSES`; any other global raises XaibenchError."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _CHECKPOINT_CLASSES:
            raise XaibenchError(f"the checkpoint refers to {module}.{name}, which is not part "
                                f"of a scikit-learn random forest; load only checkpoints this "
                                f"project wrote")
        return super().find_class(module, name)


class SklearnBackend(Backend):
    """A scikit-learn ``RandomForestClassifier`` (classification specs) or
    ``RandomForestRegressor`` (regression specs) on flattened NHWC inputs."""

    name = "sklearn"
    native_methods = {"tree": ("feature_perturbation",)}
    has_weight_tensors = False

    def __init__(self, model: _Forest, spec: ImageSpec, *, batch_size: int = 4096) -> None:
        super().__init__(spec, batch_size=batch_size)
        expected = RandomForestRegressor if spec.task == "regression" else RandomForestClassifier
        if not isinstance(model, expected):
            raise XaibenchError(f"a {spec.task} spec needs a {expected.__name__}, got "
                                f"{type(model).__name__}")
        self.model = model
        self.n_features = int(np.prod(spec.shape))
        if hasattr(model, "estimators_"):
            _float32_thresholds(model)

    # --- conversion -------------------------------------------------------------------------
    def _rows(self, x: np.ndarray) -> np.ndarray:
        """(N, H, W, C) -> (N, H·W·C) feature rows (H, W, C order)."""
        return x.reshape(len(x), self.n_features)

    def _fitted(self) -> _Forest:
        if not hasattr(self.model, "estimators_"):
            raise XaibenchError("the random forest is not fitted yet; fit it or load a "
                                "checkpoint before predicting or explaining")
        return self.model

    def _per_class(self, values: np.ndarray) -> np.ndarray:
        """(..., len(classes_)) per fitted class -> (..., n_classes) per spec class (classes
        missing from the training labels get 0); regression values pass through."""
        if self.spec.task == "regression":
            return values
        full = np.zeros((*values.shape[:-1], self.spec.n_classes), dtype=values.dtype)
        full[..., self.model.classes_.astype(np.int64)] = values
        return full

    def _scores64(self, rows: np.ndarray) -> np.ndarray:
        """(N, K) float64 scores of feature rows; not counted as evaluations."""
        model = self._fitted()
        if self.spec.task == "regression":
            return np.asarray(model.predict(rows), np.float64).reshape(len(rows), 1)
        return self._per_class(np.asarray(model.predict_proba(rows), np.float64))

    # --- prediction ---------------------------------------------------------------------------
    def _predict_batch(self, x: np.ndarray) -> np.ndarray:
        return self._scores64(self._rows(x))

    # --- native explainer ---------------------------------------------------------------------
    def _native_explain(self, method: str, x: np.ndarray, output_indices: np.ndarray, *,
                        background: np.ndarray | None,
                        **params: Any) -> tuple[np.ndarray, np.ndarray]:
        """TreeSHAP values (N, H, W, C, K) and base values (N, K): the mean model output over
        ``background`` (interventional, counted as evaluations) or the trees' mean training
        output (tree_path_dependent)."""
        return self._native_tree(x, output_indices, background, **params)

    def _native_tree(self, x: np.ndarray, output_indices: np.ndarray, background: np.ndarray,
                     *, feature_perturbation: str = "interventional"
                     ) -> tuple[np.ndarray, np.ndarray]:
        """shap.TreeExplainer in the model's output space (probabilities for a classifier),
        every output at once; Σφ = f(x) − base is verified to :data:`TREE_ADDITIVITY_RTOL`.

        Interventional TreeSHAP traverses every tree jointly for each (row, background row)
        pair, so it counts ``len(x) · len(background)`` evaluations besides the background's.
        """
        import shap

        if feature_perturbation not in FEATURE_PERTURBATIONS:
            raise ConfigError(f"explainer 'tree': unknown feature_perturbation "
                              f"'{feature_perturbation}'; use one of "
                              f"{', '.join(FEATURE_PERTURBATIONS)}")
        model, rows = self._fitted(), self._rows(x)
        largest = max(estimator.tree_.node_count for estimator in model.estimators_)
        if largest > MAX_TREE_NODES:
            raise UnsupportedModelError(
                f"explainer 'tree': a tree of this forest has {largest} nodes, more than the "
                f"{MAX_TREE_NODES} shap's TreeSHAP can index; limit the model's max_depth")
        if feature_perturbation == "interventional":
            background_rows = self._rows(background)
            background_scores = self._scores64(background_rows)
            reference = background_scores.mean(axis=0)
            # the base value as predict reports it: the mean of the float32 scores
            base = background_scores.astype(np.float32).astype(np.float64).mean(axis=0)
            explainer = shap.TreeExplainer(model, background_rows.astype(np.float64),
                                           feature_perturbation="interventional")
            self.n_evals += len(background) + len(x) * len(background)
        else:
            explainer = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
            base = reference = self._per_class(
                np.asarray(explainer.expected_value, np.float64).reshape(-1))
        phi = np.asarray(explainer.shap_values(rows.astype(np.float64), check_additivity=False),
                         np.float64).reshape(len(rows), self.n_features, -1)
        phi = self._per_class(phi)  # (N, F, K_all)
        scores = self._scores64(rows)
        self._check_additivity(phi, scores - reference,
                               max(1.0, float(np.abs(scores).max(initial=0.0))))
        values = np.take_along_axis(phi, output_indices[:, None, :], axis=2)
        return values.reshape(len(x), *self.spec.shape, -1), base[output_indices]

    @staticmethod
    def _check_additivity(phi: np.ndarray, expected: np.ndarray, scale: float) -> None:
        """XaibenchError when Σφ misses f(x) − base (``expected``, (N, K)) by more than
        :data:`TREE_ADDITIVITY_RTOL` · ``scale`` (the largest |output|, at least 1)."""
        gap = float(np.abs(phi.sum(axis=1) - expected).max(initial=0.0))
        tolerance = TREE_ADDITIVITY_RTOL * scale
        if gap > tolerance:
            raise XaibenchError(
                f"'tree' attributions do not add up to the model output (max |Σφ − (f(x) − "
                f"base)| = {gap:.3g} > {tolerance:.3g}): shap's TreeExplainer read this forest "
                f"differently from scikit-learn; check the shap and scikit-learn versions")

    # --- model life cycle ---------------------------------------------------------------------
    @classmethod
    def from_zoo(cls, architecture: str, spec: ImageSpec, *, seed: int = 0,
                 **arch_params: Any) -> "SklearnBackend":
        """An unfitted forest (a forest has no initial state: it predicts once fitted);
        ``seed`` becomes its ``random_state`` until :meth:`fit` sets its own."""
        from backends.zoo import sklearn_models

        forest = cls._zoo_model(sklearn_models.BUILDERS, architecture, spec, arch_params)
        forest.set_params(random_state=int(seed))
        return cls(forest, spec)

    @classmethod
    def from_user(cls, spec: ImageSpec, **declarations: Any) -> "SklearnBackend":
        """Refused: a user's forest would arrive as a pickle, which runs code when read."""
        raise ConfigError("backend 'sklearn' loads no user model files (a forest's file is a "
                          "pickle, which can run code when read); train the forest from the "
                          "experiment instead: architecture = \"random_forest\"")

    def fit(self, x: np.ndarray, y: np.ndarray, *, epochs: int | None = None,
            batch_size: int | None = None, lr: float | None = None, seed: int = 0,
            progress: bool = True) -> dict[str, list[float]]:
        """Grow the forest on ``x`` (N, H, W, C) with integer class labels (classification) or
        real targets (regression), ``seed`` seeding the bootstrap and feature sampling.

        One pass, no epochs: ``epochs``, ``batch_size`` and ``lr`` must not be given
        (ConfigError); ``progress`` has no epochs to show. Returns the training accuracy
        (classification) or R² (regression) as a one-entry history.
        """
        given = [name for name, value in (("epochs", epochs), ("batch_size", batch_size),
                                          ("lr", lr)) if value is not None]
        if given:
            raise ConfigError(f"backend 'sklearn' grows its forest in one pass: "
                              f"{', '.join(given)} do not apply; remove them (size the forest "
                              f"with the model params n_estimators and max_depth)")
        x = self.spec.check(x)
        y = self._targets(y, len(x))
        self.model.set_params(random_state=int(seed))
        self.model.fit(self._rows(x), y)
        _float32_thresholds(self.model)
        key = "r2" if self.spec.task == "regression" else "accuracy"
        return {key: [float(self.model.score(self._rows(x), y))]}

    def _targets(self, y: np.ndarray, n: int) -> np.ndarray:
        """Checked training targets: finite reals (regression) or labels in 0..K-1."""
        y = np.asarray(y)
        if self.spec.task == "regression":
            if y.shape != (n,) or not np.issubdtype(y.dtype, np.number) \
                    or not np.isfinite(y).all():
                raise XaibenchError(f"regression targets must be {n} finite numbers, shape "
                                    f"({n},); got {y.dtype} {y.shape}")
            return y.astype(np.float64)
        if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
            raise XaibenchError(f"labels must be integers of shape ({n},); got {y.dtype} "
                                f"{y.shape}")
        if n and (y.min() < 0 or y.max() >= self.spec.n_classes):
            raise XaibenchError(f"labels must be in 0..{self.spec.n_classes - 1}")
        return y

    def nonfinite_weights(self) -> list[str]:
        """The trees whose split thresholds or leaf values hold NaN/Inf."""
        return [f"estimators_[{i}]" for i, tree in enumerate(getattr(self.model, "estimators_",
                                                                      []))
                if not (np.isfinite(tree.tree_.threshold).all()
                        and np.isfinite(tree.tree_.value).all())]

    def save(self, path: Path) -> None:
        with replaced_atomically(path) as tmp:
            tmp.write_bytes(pickle.dumps(self.model, protocol=5))

    def load(self, path: Path) -> None:
        """Read a forest written by :meth:`save` (see the module docstring on pickles); a
        forest of another task or feature count raises XaibenchError."""
        path = Path(path)
        if not path.is_file():
            raise XaibenchError(f"no sklearn checkpoint at {path}")
        try:
            model = _ForestUnpickler(io.BytesIO(path.read_bytes())).load()
        except XaibenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - a corrupt pickle raises many kinds
            raise XaibenchError(f"cannot read sklearn checkpoint {path}: {exc}") from exc
        expected = RandomForestRegressor if self.spec.task == "regression" \
            else RandomForestClassifier
        if type(model) is not expected or getattr(model, "n_features_in_", None) \
                != self.n_features:
            raise XaibenchError(
                f"checkpoint {path} holds a {type(model).__name__} with "
                f"{getattr(model, 'n_features_in_', '?')} features; the model is a "
                f"{expected.__name__} with {self.n_features}")
        if expected is RandomForestClassifier and (
                model.classes_.min() < 0 or model.classes_.max() >= self.spec.n_classes):
            raise XaibenchError(f"checkpoint {path} predicts classes {model.classes_.tolist()}; "
                                f"the model has {self.spec.n_classes}")
        _float32_thresholds(model)
        self.model = model

    # --- what a forest does not have ------------------------------------------------------------
    def _no_weight_tensors(self, what: str) -> UnsupportedModelError:
        return UnsupportedModelError(
            f"a random forest (backend 'sklearn') is a set of trees, not weight tensors: it "
            f"cannot {what}; do not use weights_from or the randomisation metrics (mprt, "
            f"smprt, emprt) with it")

    def get_weights(self) -> Weights:
        raise self._no_weight_tensors("export weights")

    def set_weights(self, weights: Weights) -> None:
        raise self._no_weight_tensors("import weights")

    def layer_names(self) -> list[str]:
        raise self._no_weight_tensors("list layers")

    def randomized(self, n_layers: int, *, seed: int = 0) -> "SklearnBackend":
        raise self._no_weight_tensors("be randomised layer by layer")
