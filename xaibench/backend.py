"""The uniform backend interface: numpy NHWC float32 in, numpy out.

A backend wraps one model of one framework. Framework tensors never leave it. Subclasses
implement ``_predict_batch`` (and, for gradient methods, ``_native_<method>``); everything that
is the same for every framework — input checks, batching, evaluation counting, target
resolution, base values, timing, the attribution record, the weight-layout check — lives here
once. What a backend can do is declared as class data (:attr:`Backend.native_methods`,
:attr:`Backend.trainable`, :attr:`Backend.has_weight_tensors`), never inferred from its code.

Weights cross frameworks in one framework-neutral layout, :data:`Weights`: layer name ->
parameter name -> numpy array, in Flax/Keras conventions:

- ``kernel``: convolutions (kh, kw, in, out) (HWIO; torch stores (out, in, kh, kw)), dense
  layers (in, out) (torch stores (out, in));
- ``bias``; batch normalisation: ``scale``, ``bias``, ``mean``, ``var`` (running statistics).

Layer names are the module / layer names (nested modules joined with "/"); the zoo gives every
layer the same name in all three frameworks and flattens feature maps in H, W, C order
everywhere, so dense rows after a flatten already line up. Batch-normalisation epsilons are part
of the architecture, not of the weights. ``target.set_weights(source.get_weights())`` copies a
model into another framework.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence, TypeVar, Union

import numpy as np

from xaibench.errors import ConfigError, TrainingDivergedError, XaibenchError

#: What to explain: an int k = the k highest-scoring classes of each image ("top-k"),
#: or explicit class indices of shape (N,) or (N, K).
Targets = Union[int, Sequence[int], np.ndarray]

_Model = TypeVar("_Model")

#: layer name -> parameter name -> array, in the layout of the module docstring
Weights = dict[str, dict[str, np.ndarray]]

#: the fix named when training diverges
_SMALLER_LR = "train with a smaller lr (Adam usually trains well with lr = 1e-3 or below)"

#: pixel values may exceed the declared value range by this fraction of its width (round-off)
VALUE_RANGE_TOLERANCE = 1e-3

_FLOAT32 = np.dtype(np.float32)


def _images_with(bad: np.ndarray) -> str:
    """'3 of 10 images (first: image 4)' for an (N, ...) mask of bad entries."""
    per_image = bad.reshape(len(bad), -1).any(axis=1)
    return (f"{int(per_image.sum())} of {len(bad)} images "
            f"(first: image {int(np.argmax(per_image))})")


def check_checkpoint_shapes(path: Path, model: str, own: Mapping[str, tuple[int, ...]],
                            saved: Mapping[str, tuple[int, ...]]) -> None:
    """Raise XaibenchError naming the missing, unexpected and mis-shaped entries of the
    checkpoint ``path`` (``saved``: entry name -> shape) against the ``model``'s (``own``)."""
    wrong = [f"{k}: file {saved[k]} vs model {own[k]}" for k in own
             if k in saved and saved[k] != own[k]]
    parts = [f"{label} {items}" for label, items in (("missing", sorted(set(own) - set(saved))),
                                                     ("unexpected", sorted(set(saved) - set(own))),
                                                     ("shape mismatch", wrong)) if items]
    if parts:
        raise XaibenchError(f"checkpoint {path} does not match the model ({model}): "
                            + "; ".join(parts))


def check_weight_layout(weights: Weights, own: Weights, model: str) -> None:
    """Raise ConfigError unless ``weights`` has the layers, parameter names and shapes of
    ``own`` (the ``model``'s), naming every mismatch in one line."""
    problems = [f"missing layer '{name}'" for name in own if name not in weights]
    problems += [f"unexpected layer '{name}'" for name in weights if name not in own]
    for name in set(weights) & set(own):
        if set(weights[name]) != set(own[name]):
            problems.append(f"layer '{name}' has {sorted(weights[name])}, the {model} expects "
                            f"{sorted(own[name])}")
            continue
        problems += [f"'{name}/{key}' has shape {np.shape(value)}, the {model} expects "
                     f"{np.shape(own[name][key])}"
                     for key, value in weights[name].items()
                     if np.shape(value) != np.shape(own[name][key])]
    if problems:
        raise ConfigError(f"weights do not fit the {model}: " + "; ".join(problems)
                          + "; copy weights between models of the same architecture and params")


#: what a model predicts: one score per class, or one real-valued output
TASKS = ("classification", "regression")


@dataclass(frozen=True)
class ImageSpec:
    """What a model consumes: image shape (H, W, C), value range and class names.

    Tabular data uses the same spec and the same code paths: a row of F features travels as an
    image of shape (1, F, 1) and ``feature_names`` names the F columns. A ``regression`` model
    has one output, named by its single class name.
    """

    shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    value_range: tuple[float, float] = (0.0, 1.0)
    feature_names: tuple[str, ...] | None = None
    task: str = "classification"

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"unknown task '{self.task}'; use one of {', '.join(TASKS)}")
        if self.task == "regression" and len(self.class_names) != 1:
            raise ConfigError(f"a regression model has one output; got {len(self.class_names)} "
                              f"class names — name its target once")
        if self.feature_names is not None and (
                self.shape[0] != 1 or self.shape[2] != 1
                or len(self.feature_names) != self.shape[1]):
            raise ConfigError(f"{len(self.feature_names)} feature names do not fit shape "
                              f"{self.shape}; tabular rows of F features have shape (1, F, 1)")

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def is_tabular(self) -> bool:
        return self.feature_names is not None

    def check(self, x: np.ndarray) -> np.ndarray:
        """Return ``x`` as a C-contiguous float32 NHWC batch, or raise naming what is wrong."""
        if type(x) is not np.ndarray:
            x = np.asarray(x)
        if x.ndim == 3 and x.shape == self.shape:
            raise XaibenchError(f"expected a batch (N, {', '.join(map(str, self.shape))}); "
                                f"got one image of shape {x.shape} — add a batch axis")
        if x.ndim != 4 or x.shape[1:] != self.shape:
            raise XaibenchError(f"expected images of shape (N, {', '.join(map(str, self.shape))}) "
                                f"(NHWC); got {x.shape}")
        if x.dtype is not _FLOAT32 or not x.flags.c_contiguous:  # else already what we return
            if not np.issubdtype(x.dtype, np.number):
                raise XaibenchError(f"expected numeric images, got dtype {x.dtype}")
            x = np.ascontiguousarray(x, dtype=np.float32)
        if x.size:
            self._check_values(x)
        return x

    def _check_values(self, x: np.ndarray) -> None:
        """Raise unless every pixel is finite and inside :attr:`value_range` (plus
        :data:`VALUE_RANGE_TOLERANCE` of its width). One min and one max in the common case."""
        low, high = self.value_range
        margin = VALUE_RANGE_TOLERANCE * (high - low)
        # the ufuncs' reductions directly (no Python wrapper): explainers check batches of
        # one image thousands of times
        if (np.minimum.reduce(x, axis=None) >= low - margin
                and np.maximum.reduce(x, axis=None) <= high + margin):  # NaN fails both
            return
        bad = ~np.isfinite(x)
        if bad.any():
            raise XaibenchError(
                f"{int(bad.sum())} pixel values are NaN or infinite, in {_images_with(bad)}; "
                f"images must be finite: repair or drop those images")
        outside = (x < low - margin) | (x > high + margin)
        raise XaibenchError(
            f"{int(outside.sum())} pixel values lie outside the declared value range "
            f"[{low:g}, {high:g}] (the images span [{x.min():g}, {x.max():g}]), in "
            f"{_images_with(outside)}; scale the images to [{low:g}, {high:g}] (8-bit pixels: "
            f"divide by 255) or declare the range: ImageSpec(..., value_range=(lo, hi))")


@dataclass
class Attribution:
    """The result of one explanation of a batch of images.

    ``values[n, h, w, c, k]`` is the attribution of pixel (h, w, c) of image n to output
    ``output_indices[n, k]``; ``base_values`` and ``model_outputs`` are (N, K) in the same output
    space the explainer used (the model's scores).
    """

    method: str
    values: np.ndarray
    output_indices: np.ndarray
    base_values: np.ndarray
    model_outputs: np.ndarray
    wall_seconds: float
    model_evals: int
    params: dict[str, Any] = field(default_factory=dict)
    #: optional attributions at an intermediate layer's resolution (N, h, w, c, K)
    layer_values: np.ndarray | None = None

    def __post_init__(self) -> None:
        n, k = self.output_indices.shape
        if self.values.ndim != 5 or self.values.shape[0] != n or self.values.shape[-1] != k:
            raise XaibenchError(f"attribution values {self.values.shape} do not match "
                                f"output indices {self.output_indices.shape}")
        for name in ("base_values", "model_outputs"):
            if getattr(self, name).shape != (n, k):
                raise XaibenchError(f"{name} has shape {getattr(self, name).shape}, "
                                    f"expected {(n, k)}")

    @property
    def n_images(self) -> int:
        return int(self.values.shape[0])

    def additivity_gap(self) -> np.ndarray:
        """|Σφ − (f(x) − base)| per image and output, shape (N, K) (local accuracy)."""
        total = self.values.reshape(self.n_images, -1, self.values.shape[-1]).sum(axis=1)
        return np.abs(total - (self.model_outputs - self.base_values))

    def to_shap(self, images: np.ndarray | None = None,
                class_names: Sequence[str] | None = None) -> "shap.Explanation":  # noqa: F821
        """This attribution as a ``shap.Explanation`` for ``shap.image_plot``: values
        (N, H, W, C, K), base values (N, K), data the explained ``images`` (N, H, W, C; needed
        to plot), output names the explained classes by name (by index without
        ``class_names``): one list when every image explains the same classes, else per image.
        """
        import shap
        from slicer import Obj

        if images is not None and np.shape(images) != self.values.shape[:-1]:
            raise XaibenchError(f"images {np.shape(images)} do not match the explained images "
                                f"{self.values.shape[:-1]}; pass the images this attribution "
                                f"explains")
        if class_names is not None and len(class_names) <= self.output_indices.max(initial=-1):
            raise XaibenchError(f"{len(class_names)} class names do not name output "
                                f"{self.output_indices.max()}; pass every class's name")
        names = (np.asarray(class_names, dtype=str) if class_names is not None
                 else np.arange(self.output_indices.max(initial=0) + 1).astype(str))
        names = names[self.output_indices]
        per_image = bool((names != names[:1]).any())
        explanation = shap.Explanation(self.values, self.base_values, data=images,
                                       output_names=None if per_image else names[0].tolist(),
                                       compute_time=self.wall_seconds)
        if per_image:
            # set on the output axis after construction: shap reads names per image passed to
            # the constructor as a second output axis when images have as many channels as
            # there are images
            explanation.output_names = Obj(names, [0, *explanation.output_dims])
        return explanation


def resolve_targets(scores: np.ndarray, targets: Targets) -> np.ndarray:
    """Turn a :data:`Targets` spec into an (N, K) int array of output indices."""
    n, n_classes = scores.shape
    if isinstance(targets, (int, np.integer)):
        k = int(targets)
        if not 1 <= k <= n_classes:
            raise ConfigError(f"top-k targets must be in 1..{n_classes}, got {k}")
        if not np.isfinite(scores).all():
            raise XaibenchError(
                f"cannot pick the top-{k} classes: the scores are NaN or infinite for "
                f"{_images_with(~np.isfinite(scores))}; fix the model (see its predict) or "
                f"give explicit target classes")
        return np.argsort(-scores, axis=1, kind="stable")[:, :k].astype(np.int64)
    idx = np.asarray(targets, dtype=np.int64)
    if idx.ndim == 1:
        idx = idx[:, None]
    if idx.ndim != 2 or idx.shape[0] != n:
        raise ConfigError(f"targets must have shape ({n},) or ({n}, K); got {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= n_classes):
        raise ConfigError(f"target indices must be in 0..{n_classes - 1}")
    return idx


def _check_attributions(method: str, arrays: Mapping[str, np.ndarray | None]) -> None:
    """Raise naming ``method`` and the array when an explainer's output holds NaN/Inf."""
    for name, array in arrays.items():
        bad = None if array is None else ~np.isfinite(array)
        if bad is not None and bad.any():
            raise XaibenchError(
                f"explainer '{method}' returned {int(bad.sum())} NaN or infinite "
                f"{name.replace('_', ' ')} for {_images_with(bad)}; the model's outputs or "
                f"gradients overflow on these images: check the model, or use a model-agnostic "
                f"explainer (partition, permutation)")


#: images per model call when ``predict`` splits a batch: 128 keeps the zoo CNNs' activations
#: in the CPU caches (torch and Flax predict 500 28x28 images 1.6x faster than in pieces of
#: 256; Keras is as fast either way; BENCHMARKS.md); a bound on memory for large images
DEFAULT_BATCH_SIZE = 128
#: masked images per ``predict`` call of the model-agnostic explainers (their default
#: ``batch_size``); backends that compile per batch size compile this one too
EXPLAINER_BATCH_SIZE = 50


class Backend(ABC):
    """One model of one framework behind numpy ``predict`` / ``explain``."""

    name: ClassVar[str]
    #: explainers this backend computes itself (gradient methods) -> the keyword params its
    #: ``_native_<method>`` takes besides the background, e.g. {"deep": (), "gradient": (...)}
    native_methods: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: whether :meth:`fit` trains the model
    trainable: ClassVar[bool] = True
    #: whether the model is a set of weight tensors (:meth:`get_weights` / :meth:`set_weights`,
    #: :meth:`layer_names` / :meth:`randomized`); a tree ensemble is not
    has_weight_tensors: ClassVar[bool] = True

    def __init__(self, spec: ImageSpec, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.spec = spec
        self.batch_size = batch_size
        #: number of images passed through the model by ``predict`` since construction
        self.n_evals = 0

    # --- prediction -------------------------------------------------------------------------
    def predict(self, x: np.ndarray, /) -> np.ndarray:
        """Scores (N, K) float32 for an NHWC float32 batch; counts model evaluations."""
        x = self.spec.check(x)
        n = len(x)
        self.n_evals += n
        if n == 0:
            return np.zeros((0, self.spec.n_classes), np.float32)
        if n <= self.batch_size:
            scores = np.array(self._predict_batch(x), dtype=np.float32)  # a copy of our own
        else:
            scores = np.concatenate([self._predict_batch(x[i:i + self.batch_size])
                                     for i in range(0, n, self.batch_size)]
                                    ).astype(np.float32, copy=False)
        # one reduction: a float64 sum of float32 scores cannot overflow, so it is finite
        # exactly when every score is
        if not math.isfinite(np.add.reduce(scores, axis=None, dtype=np.float64)):
            self._raise_nonfinite_scores(scores)
        return scores

    def _raise_nonfinite_scores(self, scores: np.ndarray) -> None:
        bad = ~np.isfinite(scores)
        image, output = np.unravel_index(int(np.argmax(bad)), bad.shape)
        raise XaibenchError(
            f"the {self.name} model outputs NaN or infinite scores ({int(bad.sum())} of "
            f"{bad.size} outputs) for {_images_with(bad)}; e.g. output {output} of image "
            f"{image} is {scores[image, output]}: its weights hold NaN/Inf (a training run that "
            f"diverged: retrain with a smaller lr) or its computation overflows on these images")

    @abstractmethod
    def _predict_batch(self, x: np.ndarray) -> np.ndarray:
        """Scores for at most ``batch_size`` checked images (framework-specific)."""

    # --- explanation ------------------------------------------------------------------------
    def explain(self, method: str, x: np.ndarray, targets: Targets = 1,
                **params: Any) -> Attribution:
        """Explain ``targets`` of ``x`` with the registered explainer ``method``."""
        from xaibench.registry import explainers

        explainer = explainers.get(method)
        x = self.spec.check(x)
        scores = self.predict(x)
        output_indices = resolve_targets(scores, targets)
        evals_before, start = self.n_evals, time.perf_counter()
        values, base_values, *layer_values = explainer(self, x, output_indices, **params)
        wall = time.perf_counter() - start
        arrays = {"values": np.asarray(values, dtype=np.float64),
                  "base_values": np.asarray(base_values, dtype=np.float64),
                  "layer_values": (np.asarray(layer_values[0], dtype=np.float64)
                                   if layer_values else None)}
        _check_attributions(method, arrays)
        return Attribution(
            method=method,
            output_indices=output_indices,
            model_outputs=np.take_along_axis(scores, output_indices, axis=1).astype(np.float64),
            wall_seconds=wall,
            model_evals=self.n_evals - evals_before,
            params={k: v for k, v in params.items() if not isinstance(v, np.ndarray)},
            **arrays,
        )

    def native_explain(self, method: str, x: np.ndarray, output_indices: np.ndarray, *,
                       background: np.ndarray | None = None,
                       **params: Any) -> tuple[np.ndarray, ...]:
        """Gradient-based explanation computed by the framework.

        Returns (values (N, H, W, C, K), base values (N, K)) and, for explanations of an
        intermediate ``layer``, a third element: the values at layer resolution (N, h, w, c, K)
        (``values`` then holds them upsampled to the image). The inputs are checked here (params
        other than those :attr:`native_methods` declares for ``method`` raise ConfigError), then
        handed to :meth:`_native_explain`.
        """
        if method not in self.native_methods:
            raise ConfigError(f"backend '{self.name}' does not implement explainer '{method}'")
        unknown = sorted(set(params) - set(self.native_methods[method]))
        if unknown:
            takes = ", ".join(("background", *self.native_methods[method]))
            raise ConfigError(f"explainer '{method}' ({self.name}) got parameters {unknown}; "
                              f"it takes {takes}")
        from xaibench.registry import explainers

        if "background" not in explainers.entry(method).consumes:
            if background is not None:
                raise ConfigError(f"explainer '{method}' ({self.name}) takes no background; "
                                  f"remove it")
        elif background is None:
            raise ConfigError(f"explainer '{method}' needs background=<images (B, H, W, C)>")
        x = self.spec.check(x)
        if background is not None:
            background = self.spec.check(background)
            if len(background) == 0:
                raise ConfigError(f"explainer '{method}': the background is empty")
        output_indices = np.asarray(output_indices, dtype=np.int64)
        if output_indices.ndim != 2 or len(output_indices) != len(x):
            raise XaibenchError(f"output_indices must be ({len(x)}, K); got {output_indices.shape}")
        return self._native_explain(method, x, output_indices, background=background, **params)

    def _native_explain(self, method: str, x: np.ndarray, output_indices: np.ndarray, *,
                        background: np.ndarray | None, **params: Any) -> tuple[np.ndarray, ...]:
        """Run ``self._native_<method>(x, output_indices, background, **params)`` on checked
        inputs; base values are the mean model outputs over ``background`` (counted evaluations),
        or 0 for explainers without a background (class activation maps).

        ``_native_<method>`` returns (values,) or, for a ``layer``, (values, layer values), and
        adds the images it passes through the model to ``n_evals`` (passes that only verify the
        result, such as an additivity check, are not counted). A backend that knows its base
        values in closed form overrides this method instead.
        """
        impl = getattr(self, f"_native_{method}")
        if background is None:
            base_values = np.zeros(output_indices.shape)
        else:
            base_values = self.predict(background).astype(np.float64).mean(axis=0)[output_indices]
        values, *layer_values = impl(x, output_indices, background, **params)
        return (values, base_values, *layer_values)

    # --- model life cycle -------------------------------------------------------------------
    @classmethod
    def _zoo_model(cls, builders: Mapping[str, Callable[..., _Model]], architecture: str,
                   spec: ImageSpec, arch_params: Mapping[str, Any]) -> _Model:
        """``builders[architecture](spec, **arch_params)``; an unknown name or a parameter the
        catalogue entry (:class:`backends.zoo.architectures.Architecture`) does not declare
        raises ConfigError (naming close matches) before anything is built."""
        from xaibench.registry import did_you_mean, models

        builder = builders.get(architecture)
        if builder is None:
            raise ConfigError(f"unknown {cls.name} architecture '{architecture}'"
                              f"{did_you_mean(architecture, builders)} "
                              f"(known: {', '.join(sorted(builders))})")
        declared = models.get(architecture).params
        for key in arch_params:
            if key not in declared:
                raise ConfigError(f"architecture '{architecture}': unknown param '{key}'"
                                  f"{did_you_mean(key, declared)} (it takes: "
                                  f"{', '.join(declared) or 'no params'})")
        return builder(spec, **arch_params)

    @classmethod
    @abstractmethod
    def from_zoo(cls, architecture: str, spec: ImageSpec, *, seed: int = 0,
                 **arch_params: Any) -> "Backend":
        """Build the named zoo architecture with freshly initialised (seeded) weights."""

    @abstractmethod
    def fit(self, x: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int, lr: float,
            seed: int, progress: bool = True) -> dict[str, list[float]]:
        """Train on NHWC images and int labels (cross-entropy), or float32 targets with mean
        squared error for a ``regression`` spec; return per-epoch history (e.g. loss).

        ``progress`` shows a progress bar per epoch. A NaN/Inf loss stops training at the end
        of that epoch and raises :class:`TrainingDivergedError` (:meth:`_check_epoch_loss`), as
        do NaN/Inf weights after training (:meth:`_check_trained_weights`).
        """

    def _training_data(self, x: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int,
                       lr: float) -> tuple[np.ndarray, np.ndarray]:
        """Checked images and labels for :meth:`fit`: integer classes, or float32 targets for
        a ``regression`` spec (:func:`xaibench.data.base.check_labels`); bad labels or
        hyperparameters raise."""
        from xaibench.data.base import check_labels

        x = self.spec.check(x)
        if self.spec.task == "regression":
            y = check_labels(y, len(x), self.spec)
        else:
            y = np.asarray(y)
            if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
                raise XaibenchError(f"labels must be integers of shape ({len(x)},); "
                                    f"got {y.dtype} {y.shape}")
            if len(y) and (y.min() < 0 or y.max() >= self.spec.n_classes):
                raise XaibenchError(f"labels must be in 0..{self.spec.n_classes - 1}")
        if epochs < 0 or batch_size < 1 or lr <= 0:
            raise ConfigError(f"need epochs >= 0, batch_size >= 1, lr > 0; "
                              f"got {epochs}, {batch_size}, {lr}")
        return x, y

    def _epoch_bar(self, batches: range, epoch: int, epochs: int, progress: bool) -> Any:
        """A tqdm bar over the ``batches`` of one training epoch (silent unless ``progress``)."""
        from tqdm.auto import tqdm

        return tqdm(batches, desc=f"{self.name} epoch {epoch + 1}/{epochs}", unit="batch",
                    leave=False, disable=not progress)

    def _check_epoch_loss(self, loss: float, *, epoch: int, epochs: int, lr: float) -> None:
        """Raise :class:`TrainingDivergedError` when the mean loss of ``epoch`` (0-based) is
        NaN or infinite."""
        if not math.isfinite(loss):
            raise TrainingDivergedError(
                f"{self.name} training diverged: the loss is {loss} in epoch {epoch + 1} of "
                f"{epochs} with lr = {lr:g}; {_SMALLER_LR}")

    def _check_trained_weights(self, *, epochs: int, lr: float) -> None:
        """Raise :class:`TrainingDivergedError` when training left NaN/Inf weights."""
        bad = self.nonfinite_weights()
        if bad:
            shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise TrainingDivergedError(
                f"{self.name} training diverged: after {epochs} epochs with lr = {lr:g} the "
                f"weights {shown} hold NaN or infinite values; {_SMALLER_LR}")

    # --- weights ------------------------------------------------------------------------------
    def get_weights(self) -> Weights:
        """The model's weights in the framework-neutral :data:`Weights` layout (copies)."""
        raise NotImplementedError(f"backend '{self.name}' does not export its weights")

    def set_weights(self, weights: Weights) -> None:
        """Load ``weights`` (as :meth:`get_weights` returns them, from any backend) in place;
        ConfigError naming every layer, parameter and shape that does not fit the model."""
        check_weight_layout(weights, self.get_weights(), f"{self.name} model")
        self._set_weights(weights)

    def _set_weights(self, weights: Weights) -> None:
        """Load ``weights``, already checked to have this model's layout (framework-specific)."""
        raise NotImplementedError(f"backend '{self.name}' does not import weights")

    def nonfinite_weights(self) -> list[str]:
        """Names of the weight tensors that hold NaN or infinite values (empty: all finite)."""
        raise NotImplementedError(f"backend '{self.name}' does not inspect its weights")

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the weights to ``path`` (a single file)."""

    @abstractmethod
    def load(self, path: Path) -> None:
        """Read weights written by :meth:`save`."""

    # --- model randomisation (sanity checks) -------------------------------------------------
    def layer_names(self) -> list[str]:
        """Names of the layers with parameters, from input to output."""
        raise NotImplementedError(f"backend '{self.name}' does not list its layers")

    def randomized(self, n_layers: int, *, seed: int = 0) -> "Backend":
        """A copy whose top ``n_layers`` parameterised layers (output side) are re-initialised.

        Cascading top-down randomisation for the model-parameter randomisation test (MPRT):
        ``randomized(1)`` re-initialises the output layer, ``randomized(len(layer_names()))``
        the whole model. The original backend is left untouched.
        """
        raise NotImplementedError(f"backend '{self.name}' does not support randomisation")

    def _top_layers(self, n_layers: int) -> list[str]:
        """The last ``n_layers`` of :meth:`layer_names` (output side last), range-checked."""
        names = self.layer_names()
        if not 0 <= int(n_layers) <= len(names):
            raise ConfigError(f"n_layers must be in 0..{len(names)} (layers: {names}); "
                              f"got {n_layers}")
        return names[len(names) - int(n_layers):]
