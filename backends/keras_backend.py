"""Keras 3 (TensorFlow) backend: a ``keras.Model`` behind numpy ``predict`` / ``explain``.

- ``predict`` runs ``model(x, training=False)`` inside a ``tf.function`` with a fixed input
  signature (never ``model.predict``, which costs ~100 ms per call).
- ``deep`` is shap's TF DeepExplainer, ``gradient`` shap's GradientExplainer. Layers shap's
  DeepLIFT rules do not cover are refused before anything runs (:func:`check_deep_supported`).
- ``gradient`` with ``layer=`` attributes the output to an inner layer's activations, also for
  layers inside nested models (the frozen VGG16 of ``vgg16_transfer``): the model is flattened
  and split at the layer (:func:`split_at_layer`).
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import tempfile
import warnings
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import shap  # noqa: E402
import tensorflow as tf  # noqa: E402

from backends import _user  # noqa: E402
from backends._cam import CAM_METHODS, ClassActivationMaps  # noqa: E402
from backends._shap_native import (explain_by_class, global_numpy_rng_preserved,  # noqa: E402
                                   spread_to_image)
from xaibench._files import replaced_atomically  # noqa: E402
from xaibench.backend import DEFAULT_BATCH_SIZE, Backend, ImageSpec, Weights  # noqa: E402
from xaibench.errors import ConfigError, UnsupportedModelError, XaibenchError  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise XaibenchError(f"the keras backend needs Keras on TensorFlow (KERAS_BACKEND=tensorflow); "
                        f"Keras is running on {keras.backend.backend()!r}")

#: linear TF ops missing from shap's DeepLIFT table (``op_handlers`` in
#: shap/explainers/_deep/deep_tf.py); for a linear op the DeepLIFT multipliers are the plain
#: gradients, so they are added as shap's own ``passthrough`` rule while the explainer runs.
#: ResizeBilinear makes ``keras.layers.Resizing`` (vgg16_transfer) explainable.
DEEP_LINEAR_OPS = ("ResizeBilinear", "ResizeNearestNeighbor", "Neg")

#: canonical batch-norm parameter name -> Keras attribute
_BATCHNORM = {"scale": "gamma", "bias": "beta", "mean": "moving_mean",
              "var": "moving_variance"}

#: the name under which :meth:`KerasBackend.save` records the model's weight layout
_SIGNATURE_ATTR = "xaibench_weights"


@contextlib.contextmanager
def _shap_quieted() -> Iterator[None]:
    """Silence the harmless noise of shap's TF explainers on Keras 3.

    shap warns about TF > 2.4, passes the input as a one-element list (Keras warns about the
    structure) and builds one ``tf.function`` per output (TF logs retracing warnings).
    """
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Your TensorFlow version is newer")
            warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
            yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _deep_linear_ops_registered() -> Iterator[None]:
    """Give shap's TF DeepExplainer a (linear) rule for :data:`DEEP_LINEAR_OPS` in the block."""
    from shap.explainers._deep import deep_tf

    added = [op for op in DEEP_LINEAR_OPS if op not in deep_tf.op_handlers]
    deep_tf.op_handlers.update({op: deep_tf.passthrough for op in added})
    try:
        yield
    finally:
        for op in added:
            del deep_tf.op_handlers[op]


def iter_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    """Every layer of ``model``, descending into nested models (which are listed too)."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from iter_layers(layer)


def _differentiable_path(graph: tf.Graph) -> list[tf.Operation]:
    """The ops through which gradients flow from ``graph``'s outputs to its first input."""
    upstream: set[tf.Operation] = set()
    stack = [t.op for t in graph.outputs]
    while stack:
        op = stack.pop()
        if op not in upstream:
            upstream.add(op)
            stack.extend(t.op for t in op.inputs)
    path: list[tf.Operation] = []
    tensors = [graph.inputs[0]]
    while tensors:
        for op in tensors.pop().consumers():
            if op in upstream and op not in path:
                path.append(op)
                tensors.extend(t for t in op.outputs if t.dtype.is_floating)
    return path


def _op_owner(op_name: str, layers: dict[str, keras.layers.Layer]) -> str:
    """Describe the layer an op was traced in, e.g. "layer 'hidden' (Dense, activation gelu)"."""
    for scope in reversed(op_name.split("/")[:-1]):
        for name in (scope, re.sub(r"_\d+$", "", scope)):  # TF uniquifies scopes: conv1_1
            if name in layers:
                layer = layers[name]
                activation = getattr(layer, "activation", None)
                detail = (f", activation {getattr(activation, '__name__', activation)}"
                          if activation else "")
                return f"layer '{name}' ({type(layer).__name__}{detail})"
    return f"op '{op_name}'"


def check_deep_supported(model: keras.Model, graph: tf.Graph) -> None:
    """Raise UnsupportedModelError if shap's TF DeepExplainer cannot run ``model``.

    ``graph`` is the model's traced forward pass. shap's TF DeepExplainer replaces the gradient
    of every op between input and output by its DeepLIFT rule and fails on an op it has no rule
    for (LeakyReLU, relu6 and hard_sigmoid's Relu6, gelu's Erfc, silu's custom gradient,
    softsign, log_softmax, ...); this names the layers and activations before anything runs.
    """
    from shap.explainers._deep.deep_tf import op_handlers

    layers = {layer.name: layer for layer in iter_layers(model)}
    found: dict[str, set[str]] = {}
    for op in _differentiable_path(graph):
        if op.type not in op_handlers and op.type not in DEEP_LINEAR_OPS:
            found.setdefault(_op_owner(op.name, layers), set()).add(op.type)
    if found:
        raise UnsupportedModelError(
            f"model '{model.name}' is not supported by the 'deep' explainer: shap's TF "
            f"DeepExplainer has no DeepLIFT rule for\n  - "
            + "\n  - ".join(f"{owner}: TF op {', '.join(sorted(ops))}"
                             for owner, ops in found.items())
            + "\nuse the 'gradient' explainer, or supported activations (relu, sigmoid, tanh, "
            "softplus, elu, selu, exponential, softmax)")


def weighted_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers that own weights (inside nested models too), from input to output."""
    return [layer for layer in iter_layers(model)
            if layer.weights and not isinstance(layer, keras.Model)]


def _initial_value(layer: keras.layers.Layer, variable: keras.Variable, seed: int) -> Any:
    """A fresh value of ``variable`` from its layer's ``<name>_initializer``, seeded."""
    initializer = getattr(layer, f"{variable.name}_initializer", None)
    if initializer is None:
        raise UnsupportedModelError(
            f"layer '{layer.name}' ({type(layer).__name__}) has no {variable.name}_initializer; "
            f"cannot re-initialise its weight '{variable.name}'")
    config = initializer.get_config()
    if "seed" in config:
        initializer = type(initializer).from_config({**config, "seed": seed})
    return initializer(tuple(variable.shape), dtype=variable.dtype)


def find_layer(model: keras.Model, layer: str | int) -> keras.layers.Layer:
    """The layer named ``layer`` (searched in nested models too) or ``model.layers[layer]``."""
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if not -len(model.layers) <= layer < len(model.layers):
            raise ConfigError(f"layer index {layer} out of range: model '{model.name}' has "
                              f"{len(model.layers)} layers")
        return model.layers[layer]
    by_name: dict[str, keras.layers.Layer] = {}
    for candidate in iter_layers(model):
        by_name.setdefault(candidate.name, candidate)
    if layer in by_name:
        return by_name[layer]
    close = difflib.get_close_matches(str(layer), list(by_name), n=5, cutoff=0.5)
    hint = f" -- did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ConfigError(f"unknown layer {layer!r} in model '{model.name}'{hint} "
                      f"(layers: {', '.join(by_name)})")


def split_at_layer(model: keras.Model, target: keras.layers.Layer,
                   input_shape: tuple[int, ...]) -> tuple[keras.Model, keras.Model]:
    """(features: input -> ``target``'s output, head: that output -> model output).

    The model is rebuilt as one flat graph of its own layers (shared weights): nested
    Sequential / functional models are inlined, so ``target`` may sit inside one.
    """
    captured: list[Any] = []

    def call(operation: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(operation, keras.Sequential):
            out = args[0]
            for sub in operation.layers:
                out = call(sub, out)
        elif isinstance(operation, keras.Model) and hasattr(operation, "_run_through_graph"):
            # a functional model: replay its graph layer by layer (what keras.models.clone_model
            # does internally; its public form returns a new nested model, not the tensors)
            out = operation._run_through_graph(args[0], call_fn=call)
        else:
            out = operation(*args, **kwargs)
        if operation is target:
            captured.append(out)
        return out

    inputs = keras.Input(input_shape)
    outputs = call(model, inputs)
    if len(captured) != 1:
        raise ConfigError(f"layer '{target.name}' is called {len(captured)} times in the forward "
                          f"pass of '{model.name}' (layers inside subclassed models cannot be "
                          f"reached); explain a layer that is called exactly once")
    activations = captured[0]
    if len(activations.shape) != 4:
        raise ConfigError(f"layer '{target.name}' outputs shape {activations.shape}; layer "
                          f"explanations need a feature map (N, h, w, c)")
    try:
        head = keras.Model(activations, outputs)
    except ValueError as exc:
        raise ConfigError(f"the output of '{model.name}' does not depend on its input only "
                          f"through layer '{target.name}' (e.g. a skip connection bypasses "
                          f"it): {exc}") from exc
    return keras.Model(inputs, activations), head


class KerasBackend(ClassActivationMaps, Backend):
    """A Keras 3 model on TensorFlow; native explainers: deep, gradient, cam, gradcam,
    gradcam_pp."""

    name: ClassVar[str] = "keras"
    native_methods: ClassVar[dict[str, tuple[str, ...]]] = {
        "deep": (), "gradient": ("nsamples", "local_smoothing", "seed", "layer"), **CAM_METHODS}

    def __init__(self, model: keras.Model, spec: ImageSpec, *,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if not isinstance(model, keras.Model):
            raise ConfigError(f"KerasBackend needs a keras.Model, got {type(model).__name__}")
        super().__init__(spec, batch_size=batch_size)
        self.model = model
        # the traced graph itself: calling it skips tf.function's per-call dispatch (~0.25 ms,
        # a fifth of a batch-1 forward of the zoo CNN), with the same outputs bit for bit
        self._forward = tf.function(
            self._call, input_signature=[tf.TensorSpec((None, *spec.shape), tf.float32)]
        ).get_concrete_function()
        out = self._forward.structured_outputs
        if not isinstance(out, tf.Tensor) or out.shape.rank != 2 or out.shape[1] != spec.n_classes:
            got = f"shape {tuple(out.shape)}" if isinstance(out, tf.Tensor) else repr(out)
            raise ConfigError(f"model '{model.name}' outputs {got}; expected one tensor of shape "
                              f"(N, {spec.n_classes}) for the spec's {spec.n_classes} classes")
        self._splits: dict[str | int, tuple[keras.Model, keras.Model]] = {}

    def _call(self, x: tf.Tensor) -> tf.Tensor:
        return self.model(x, training=False)

    def _predict_batch(self, x: np.ndarray) -> np.ndarray:
        return self._forward(tf.convert_to_tensor(x)).numpy()

    @cached_property
    def _symbolic(self) -> tuple[Any, Any]:
        """(input, output) KerasTensors of the model called on a fresh ``keras.Input``."""
        inputs = keras.Input(self.spec.shape)
        return inputs, self.model(inputs)

    # --- native explainers ------------------------------------------------------------------
    def _native_deep(self, x: np.ndarray, output_indices: np.ndarray,
                     background: np.ndarray) -> tuple[np.ndarray]:
        """DeepLIFT per distinct class, each on a one-column view of the model."""
        check_deep_supported(self.model, self._forward.graph)
        inputs, outputs = self._symbolic

        def explain_class(cls: int, images: np.ndarray) -> np.ndarray:
            with _shap_quieted(), _deep_linear_ops_registered():
                explainer = shap.DeepExplainer((inputs, outputs[:, cls:cls + 1]), background)
                values = explainer.shap_values(x[images], check_additivity=False)
            # the expected value over the background, then one (image + background) pass each
            self.n_evals += len(background) * (1 + 2 * len(images))
            return values[..., 0]

        return (explain_by_class(output_indices, explain_class),)

    def _native_gradient(self, x: np.ndarray, output_indices: np.ndarray,
                         background: np.ndarray, *, nsamples: int = 200,
                         local_smoothing: float = 0.0, seed: int = 0,
                         layer: str | int | None = None) -> tuple[np.ndarray, ...]:
        """Expected gradients (shap's GradientExplainer), of the image or of ``layer``."""
        if layer is None:
            inputs, outputs = self._symbolic
            return (self._expected_gradients(inputs, outputs, x, background, output_indices,
                                             nsamples, local_smoothing, seed),)
        features, head = self._split(layer)
        layer_values = self._expected_gradients(
            head.input, head.output, self._run(features, x), self._run(features, background),
            output_indices, nsamples, local_smoothing, seed)
        return spread_to_image(layer_values, self.spec.shape), layer_values

    def _expected_gradients(self, inputs: Any, outputs: Any, x: np.ndarray,
                            background: np.ndarray, output_indices: np.ndarray, nsamples: int,
                            local_smoothing: float, seed: int) -> np.ndarray:
        """shap's GradientExplainer of ``inputs -> outputs`` per distinct class.

        Run like ``deep`` (and like the torch backend, so that both draw the same samples):
        one-column view per class, ``rseed=seed`` for every class.
        """
        nsamples, seed = int(nsamples), int(seed) % 2**32

        def explain_class(cls: int, images: np.ndarray) -> np.ndarray:
            explainer = shap.GradientExplainer((inputs, outputs[:, cls:cls + 1]), background,
                                               batch_size=min(nsamples, self.batch_size),
                                               local_smoothing=float(local_smoothing))
            values = explainer.shap_values(x[images], nsamples=nsamples, rseed=seed)
            self.n_evals += len(images) * (1 + nsamples)  # outputs, then the gradient samples
            return np.asarray(values)[..., 0]

        with global_numpy_rng_preserved(), _shap_quieted():
            return explain_by_class(output_indices, explain_class)

    def _split(self, layer: str | int) -> tuple[keras.Model, keras.Model]:
        if layer not in self._splits:
            self._splits[layer] = split_at_layer(self.model, find_layer(self.model, layer),
                                                 self.spec.shape)
        return self._splits[layer]

    # --- class activation maps (backends._cam) -------------------------------------------------
    def _conv_layer_names(self) -> list[str]:
        return [layer.name for layer in iter_layers(self.model)
                if isinstance(layer, keras.layers.Conv2D)]

    def _layer_gradients(self, x: np.ndarray, output_indices: np.ndarray,
                         layer: str) -> tuple[np.ndarray, np.ndarray]:
        """The model split at ``layer``; tf.GradientTape on the head gives the gradient of each
        image's k-th explained score, for every k."""
        features, head = self._split(layer)
        activations, gradients = [], []
        for start in range(0, len(x), self.batch_size):
            a = tf.convert_to_tensor(features(x[start:start + self.batch_size], training=False))
            idx = tf.convert_to_tensor(output_indices[start:start + self.batch_size])
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(a)
                explained = tf.gather(head(a, training=False), idx, batch_dims=1)
                totals = [tf.reduce_sum(explained[:, k]) for k in range(idx.shape[1])]
            gradients.append(np.stack([tape.gradient(total, a).numpy() for total in totals], -1))
            activations.append(a.numpy())
            del tape
        self.n_evals += len(x)
        return np.concatenate(activations), np.concatenate(gradients)

    def _layer_head(self, layer: str, activations: np.ndarray) -> np.ndarray:
        head = self._split(layer)[1]
        return np.concatenate([
            np.asarray(head(activations[i:i + self.batch_size].astype(np.float32),
                            training=False), np.float64)
            for i in range(0, len(activations), self.batch_size)])

    def _run(self, model: keras.Model, x: np.ndarray) -> np.ndarray:
        """``model(x)`` in batches (inference mode); counts the images."""
        self.n_evals += len(x)
        return np.concatenate([model(x[i:i + self.batch_size], training=False).numpy()
                               for i in range(0, len(x), self.batch_size)])

    # --- model life cycle -------------------------------------------------------------------
    @classmethod
    def from_zoo(cls, architecture: str, spec: ImageSpec, *, seed: int = 0,
                 **arch_params: Any) -> "KerasBackend":
        """Build the named zoo architecture after ``keras.utils.set_random_seed(seed)``."""
        from backends.zoo.keras_models import BUILDERS

        keras.utils.set_random_seed(seed)
        return cls(cls._zoo_model(BUILDERS, architecture, spec, arch_params), spec)

    #: the input layout of a user model that declares none
    user_layout: ClassVar[str] = "NHWC"

    @classmethod
    def from_user(cls, spec: ImageSpec, *, weights: str | Path, model: str | None = None,
                  params: dict[str, Any] | None = None, layout: str | None = None,
                  value_range: tuple[float, float] = (0.0, 1.0),
                  base_dir: str | Path | None = None) -> "KerasBackend":
        """A user's trained model saved as a ``.keras`` file (``model.save("model.keras")``),
        taking input in ``layout`` (default NHWC) with pixel values in ``value_range``; the
        scaling and transpose are layers in front of it. Checked on one batch."""
        weights = _user.require_file(weights, "weights")
        if model is not None or params:
            raise ConfigError(f"a .keras file holds its architecture: remove model = {model!r} "
                              f"and params from this keras model (weights = '{weights.name}')")
        if weights.suffix != ".keras":
            raise ConfigError(f"weights = '{weights.name}': keras models are read from a .keras "
                              f"file; save yours with model.save('model.keras')")
        try:
            net = keras.saving.load_model(weights, compile=False)
        except Exception as exc:  # noqa: BLE001 - Keras raises many kinds here
            text = str(exc).strip()
            raise ConfigError(f"cannot load weights = '{weights.name}' ({type(exc).__name__}: "
                              f"{text.splitlines()[0] if text else 'no message'}); save it with "
                              f"model.save('model.keras') (custom layers must be registered "
                              f"with keras.saving.register_keras_serializable)") from None
        layout = layout or cls.user_layout
        scale, offset = _user.affine(value_range)
        _user.model_shape(spec, layout)  # checks the layout's name
        adapted: list[keras.Model] = []

        def forward(x: np.ndarray) -> np.ndarray:
            adapted.append(_adapted(net, spec.shape, layout, scale, offset))
            return keras.ops.convert_to_numpy(adapted[0](x, training=False))

        _user.check_first_batch(forward, spec, layout, f"keras model '{weights.name}'")
        return cls(adapted[0], spec)

    def fit(self, x: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int, lr: float,
            seed: int, progress: bool = True, augment: bool = False,
            patience: int | None = None,
            validation_fraction: float = 0.1) -> dict[str, list[float]]:
        """Adam on sparse cross-entropy (mean squared error for a regression spec); returns the
        per-epoch history.

        A seeded ``validation_fraction`` of the images is held out; with ``patience`` training
        stops when the validation loss has not improved for that many epochs and the best
        weights are restored. ``augment`` applies random flips, shifts and zooms to training
        batches only. The loss takes logits unless the model ends in a softmax.
        """
        x, y = self._training_data(x, y, epochs=epochs, batch_size=batch_size, lr=lr)
        if not 0 <= validation_fraction < 1:
            raise ConfigError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
        keras.utils.set_random_seed(seed)
        order = np.random.default_rng(seed).permutation(len(x))
        n_val = int(round(len(x) * validation_fraction))
        if patience is not None and n_val == 0:
            raise ConfigError("early stopping (patience) needs a validation_fraction > 0")
        val, train = order[:n_val], order[n_val:]

        trainer = keras.Sequential([keras.Input(self.spec.shape),
                                    *(self._augmentation(seed) if augment else []), self.model])
        if self.spec.task == "regression":
            loss, metrics = keras.losses.MeanSquaredError(), []
        else:
            loss = keras.losses.SparseCategoricalCrossentropy(
                from_logits=not _ends_in_softmax(self.model))
            metrics = ["accuracy"]
        trainer.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=metrics,
                        jit_compile=False)
        callbacks = [self._epoch_callback(-(-len(train) // batch_size), epochs, lr, progress)]
        if patience is not None:
            callbacks.append(keras.callbacks.EarlyStopping("val_loss", patience=patience,
                                                           restore_best_weights=True))
        history = trainer.fit(x[train], y[train], batch_size=batch_size, epochs=epochs,
                              validation_data=(x[val], y[val]) if n_val else None,
                              shuffle=True, callbacks=callbacks, verbose=0)
        self._check_trained_weights(epochs=epochs, lr=lr)
        return {key: [float(v) for v in values] for key, values in history.history.items()}

    def _epoch_callback(self, n_batches: int, epochs: int, lr: float,
                        progress: bool) -> keras.callbacks.Callback:
        """A progress bar per epoch; a NaN/Inf loss raises at the end of its epoch."""
        bar: list[Any] = []

        def begin(epoch: int, logs: dict[str, Any] | None = None) -> None:
            bar[:] = [self._epoch_bar(range(n_batches), epoch, epochs, progress)]

        def end(epoch: int, logs: dict[str, Any] | None = None) -> None:
            bar[0].close()
            if logs and "loss" in logs:
                self._check_epoch_loss(float(logs["loss"]), epoch=epoch, epochs=epochs, lr=lr)

        return keras.callbacks.LambdaCallback(
            on_epoch_begin=begin, on_train_batch_end=lambda batch, logs=None: bar[0].update(1),
            on_epoch_end=end)

    def nonfinite_weights(self) -> list[str]:
        """Variables (by path) holding NaN/Inf."""
        return [variable.path for variable in self.model.weights
                if variable.dtype.startswith(("float", "bfloat"))
                and not np.isfinite(keras.ops.convert_to_numpy(variable)).all()]

    def _augmentation(self, seed: int) -> list[keras.layers.Layer]:
        """Random flip / shift / zoom layers (training only); gaps get the lowest value."""
        fill = {"fill_mode": "constant", "fill_value": self.spec.value_range[0]}
        return [keras.layers.RandomFlip("horizontal", seed=seed),
                keras.layers.RandomTranslation(0.1, 0.1, seed=seed + 1, **fill),
                keras.layers.RandomZoom(0.1, seed=seed + 2, **fill)]

    def get_weights(self) -> Weights:
        """Convolution / dense kernels and biases and batch-norm parameters and statistics,
        by layer name (layers of nested models included)."""
        weights: Weights = {}
        for layer in weighted_layers(self.model):
            if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
                                  keras.layers.Dense)):
                weights[layer.name] = {"kernel": np.asarray(layer.kernel)}
                if layer.bias is not None:
                    weights[layer.name]["bias"] = np.asarray(layer.bias)
            elif isinstance(layer, keras.layers.BatchNormalization):
                weights[layer.name] = {key: np.asarray(getattr(layer, attr))
                                       for key, attr in _BATCHNORM.items()
                                       if getattr(layer, attr, None) is not None}
            else:
                raise UnsupportedModelError(
                    f"no weight-transfer rule for Keras layer '{layer.name}' "
                    f"({type(layer).__name__}); use convolutions, dense and batch-norm layers "
                    f"only")
        return weights

    def _set_weights(self, weights: Weights) -> None:
        layers = {layer.name: layer for layer in weighted_layers(self.model)}
        for name, params in weights.items():
            batchnorm = isinstance(layers[name], keras.layers.BatchNormalization)
            for key, value in params.items():
                getattr(layers[name], _BATCHNORM[key] if batchnorm else key).assign(value)

    def _signature(self) -> list[list[Any]]:
        """The weight layout (variable name and shape, in order) that load checks."""
        return [[v.name, list(v.shape)] for v in self.model.weights]

    def save(self, path: Path) -> None:
        """Write the weights to ``path`` atomically (Keras .weights.h5 format, any file name)."""
        import h5py

        with replaced_atomically(path, suffix=".weights.h5") as tmp:  # Keras needs the suffix
            self.model.save_weights(tmp)
            with h5py.File(tmp, "a") as f:
                f.attrs[_SIGNATURE_ATTR] = json.dumps(self._signature())

    def load(self, path: Path) -> None:
        """Read weights written by :meth:`save`; a different architecture raises."""
        import h5py

        path = Path(path)
        try:
            with h5py.File(path, "r") as f:
                saved = f.attrs.get(_SIGNATURE_ATTR)
        except OSError as exc:
            raise XaibenchError(f"cannot read Keras weights from {path}: {exc}") from exc
        if saved is None:
            raise XaibenchError(f"{path} was not written by KerasBackend.save")
        saved, current = json.loads(saved), self._signature()
        if saved != current:
            diff = next((f"{s} != {c}" for s, c in zip(saved, current) if s != c),
                        f"{len(saved)} != {len(current)} weight tensors")
            raise XaibenchError(f"{path} holds weights of another architecture than model "
                                f"'{self.model.name}' (first difference: {diff})")
        with tempfile.TemporaryDirectory() as tmp:
            link = Path(tmp) / "model.weights.h5"  # Keras insists on this suffix
            link.symlink_to(path.resolve())
            self.model.load_weights(str(link))

    # --- model randomisation (sanity checks) ------------------------------------------------
    def layer_names(self) -> list[str]:
        """Layers that own weights (inside nested models too), from input to output."""
        return [layer.name for layer in weighted_layers(self.model)]

    def randomized(self, n_layers: int, *, seed: int = 0) -> "KerasBackend":
        """A clone whose top ``n_layers`` weighted layers get fresh values from their
        initialisers; layer i's values depend only on (``seed``, i), whatever ``n_layers``."""
        top = self._top_layers(n_layers)
        model = keras.models.clone_model(self.model, recursive=True)
        model.set_weights(self.model.get_weights())
        layers = weighted_layers(model)
        for index in range(len(layers) - len(top), len(layers)):
            for number, variable in enumerate(layers[index].weights):
                state = np.random.SeedSequence([int(seed), index, number]).generate_state(1)
                variable.assign(_initial_value(layers[index], variable, int(state[0] >> 1)))
        return type(self)(model, self.spec, batch_size=self.batch_size)


def _adapted(net: keras.Model, shape: tuple[int, int, int], layout: str, scale: float,
             offset: float) -> keras.Model:
    """``net`` behind NHWC input in [0, 1]: a Rescaling layer onto its value range and a
    Permute to NCHW in front of it, where needed (``net`` itself when neither is)."""
    inputs = keras.Input(shape)
    x = inputs
    if (scale, offset) != (1.0, 0.0):
        x = keras.layers.Rescaling(scale, offset, name="value_range")(x)
    if layout == "NCHW":
        x = keras.layers.Permute((3, 1, 2), name="to_nchw")(x)
    if x is inputs:
        return net
    return keras.Model(inputs, net(x), name=f"{net.name}_adapted")


def _ends_in_softmax(model: keras.Model) -> bool:
    """True when the model's last layer is a softmax (it outputs probabilities, not logits)."""
    last = model.layers[-1]
    return (isinstance(last, keras.layers.Softmax)
            or getattr(getattr(last, "activation", None), "__name__", None) == "softmax")
