"""Flax backend: a ``flax.linen`` module (NHWC) behind the numpy :class:`Backend` API.

Prediction runs through ``jax.jit`` on a few bucket sizes (powers of two and the batch size),
so callers with varying batch sizes (shap's Partition explainer: 1 ... 50) reuse a handful of
compiled programs: a batch is cut into bucket-sized pieces and its last piece zero-padded when
that wastes at most an eighth of the batch (:func:`_pieces`). shap has no JAX code path, so
the native explainers are our own:
:mod:`backends._jax_deeplift` (``deep``, DeepLIFT rescale as shap's DeepExplainer) and
:mod:`backends._jax_gradient` (``gradient``, expected gradients as shap's GradientExplainer);
both are checked against shap's PyTorch explainers on identical weights
(``tests/backends/test_parity.py``).
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path
from typing import Any, Callable

import numpy as np

from xaibench._files import replaced_atomically
from xaibench.backend import (DEFAULT_BATCH_SIZE, EXPLAINER_BATCH_SIZE, Backend, ImageSpec,
                              Weights, check_checkpoint_shapes)
from xaibench.errors import ConfigError, MissingFrameworkError, UnsupportedModelError, XaibenchError

try:
    import flax.core
    import flax.linen as nn
    import flax.serialization
    import jax
    import jax.numpy as jnp
except ImportError as exc:  # pragma: no cover - exercised only without jax
    raise MissingFrameworkError("flax", "jax") from exc

from backends import _jax_deeplift, _jax_gradient, _user
from backends._cam import CAM_METHODS, ClassActivationMaps
from backends._shap_native import additivity_gap, spread_to_image

LayerPath = tuple[str, ...]


#: compiled batch sizes grow in powers of two up to this, then in steps of it
BUCKET_STEP = 16


def _buckets(batch_size: int) -> tuple[int, ...]:
    """Compiled batch sizes below ``batch_size`` — 1, 2, 4, ... :data:`BUCKET_STEP`, then its
    multiples (a batch of 40 runs as 32 + 8; with powers of two only, 50 ran as 32 + 16 + 2:
    0.85 of the time of one call of exactly 50, 48 + 2 takes 0.92) and the explainers'
    batch of 50 — then ``batch_size`` itself."""
    sizes = [1]
    while sizes[-1] < min(BUCKET_STEP, batch_size):
        sizes.append(sizes[-1] * 2)
    while sizes[-1] + BUCKET_STEP < batch_size:
        sizes.append(sizes[-1] + BUCKET_STEP)
    return tuple(sorted({*(s for s in (*sizes, EXPLAINER_BATCH_SIZE) if s < batch_size),
                         batch_size}))


#: a batch's last piece is zero-padded up to a bucket when that adds at most this fraction of
#: the batch in wasted rows; otherwise it is cut further (one more call instead)
PADDING_WASTE = 1 / 8


@functools.lru_cache(maxsize=1024)
def _pieces(n: int, batch_size: int) -> tuple[int, ...]:
    """Bucket sizes that cover a batch of ``1 <= n <= batch_size`` rows, largest first: the
    largest bucket that fits while padding the rest to the next bucket would waste more than
    :data:`PADDING_WASTE` of ``n`` rows; the last piece may exceed the rows left (padding)."""
    buckets = _buckets(batch_size)
    pieces: list[int] = []
    left = n
    while left:
        above = next(b for b in buckets if b >= left)
        if above - left <= PADDING_WASTE * n:
            pieces.append(above)
            break
        below = max(b for b in buckets if b <= left)
        pieces.append(below)
        left -= below
    return tuple(pieces)


def _layer_name(path: LayerPath) -> str:
    return "/".join(path)


class _UserInput(nn.Module):
    """A user's module behind NHWC input in [0, 1]: the input is mapped linearly onto the
    module's value range and transposed to NCHW if it takes that, inside the traced graph."""

    model: nn.Module
    nchw: bool
    scale: float
    offset: float

    def __call__(self, x: jax.Array) -> jax.Array:
        if (self.scale, self.offset) != (1.0, 0.0):
            x = x * self.scale + self.offset
        return self.model(jnp.transpose(x, (0, 3, 1, 2)) if self.nchw else x)


class FlaxBackend(ClassActivationMaps, Backend):
    """A Flax linen module mapping NHWC float input to (N, n_classes) scores.

    ``params`` is either the module's variables (``{"params": ..., ...}``, as returned by
    ``module.init``) or the ``"params"`` collection alone.
    """

    name = "flax"
    native_methods = {"deep": ("check_additivity",),
                      "gradient": ("nsamples", "local_smoothing", "seed", "layer"),
                      **CAM_METHODS}

    def __init__(self, module: nn.Module, params: Any, spec: ImageSpec, *,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        super().__init__(spec, batch_size=batch_size)
        if not isinstance(module, nn.Module):
            raise XaibenchError(f"FlaxBackend needs a flax.linen.Module, "
                                f"got {type(module).__name__}")
        params = flax.core.unfreeze(params)
        if not isinstance(params, dict):
            raise XaibenchError(f"params must be a dict of variables, got {type(params).__name__}")
        self.module = module
        self.variables: dict[str, Any] = params if "params" in params else {"params": params}
        self._apply = jax.jit(module.apply)
        out = jax.eval_shape(module.apply, self.variables,
                             jax.ShapeDtypeStruct((1, *spec.shape), jnp.float32))
        if not hasattr(out, "shape") or tuple(out.shape) != (1, spec.n_classes):
            got = tuple(out.shape) if hasattr(out, "shape") else type(out).__name__
            raise XaibenchError(f"the model must map (N, {', '.join(map(str, spec.shape))}) "
                                f"(NHWC) to (N, {spec.n_classes}) scores; for one image it "
                                f"returned {got}")
        self._deeplift_plan: _jax_deeplift.Plan | None = None
        self._features: dict[LayerPath, Callable[[Any, jax.Array], jax.Array]] = {}
        self._heads: dict[LayerPath, Callable[[Any, jax.Array], jax.Array]] = {}
        self._head_gradients: dict[LayerPath, Callable[..., jax.Array]] = {}

    # --- prediction ---------------------------------------------------------------------------
    def _predict_batch(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        pieces = _pieces(n, self.batch_size)
        if pieces == (n,):
            return np.asarray(self._apply(self.variables, x))
        parts, start = [], 0
        for size in pieces:
            piece = x[start:start + size]
            if len(piece) < size:
                piece = np.concatenate([piece, np.zeros((size - len(piece), *x.shape[1:]),
                                                        x.dtype)])
            parts.append(np.asarray(self._apply(self.variables, piece)))
            start += size
        return np.concatenate(parts)[:n]

    def _scores(self, x: np.ndarray) -> np.ndarray:
        """Scores of checked images as float64, not counted as evaluations."""
        parts = [self._predict_batch(x[i:i + self.batch_size])
                 for i in range(0, len(x), self.batch_size)]
        return np.concatenate(parts).astype(np.float64)

    # --- native explainers --------------------------------------------------------------------
    def _native_deep(self, x: np.ndarray, output_indices: np.ndarray, bg: np.ndarray, *,
                     check_additivity: bool = True) -> tuple[np.ndarray]:
        """DeepLIFT (rescale rule) of every requested output, image by image."""
        if self._deeplift_plan is None:
            self._deeplift_plan = _jax_deeplift.build_plan(self.module.apply, self.variables,
                                                           self.spec.shape)
        values = np.zeros((*x.shape, output_indices.shape[1]))
        chunk = self._chunk(len(bg), output_indices.shape[1])
        for i, (xi, idx) in enumerate(zip(x, output_indices)):
            phi = _jax_deeplift.image_attributions(self._deeplift_plan, self.variables, xi, bg,
                                                   idx, chunk=chunk)
            values[i] = np.moveaxis(np.asarray(phi, dtype=np.float64), 0, -1)
        self.n_evals += len(bg) * (1 + 2 * len(x))
        if check_additivity and output_indices.size:
            fx = np.take_along_axis(self._scores(x), output_indices, axis=1)
            gap, tol = additivity_gap(values, fx, self._scores(bg).mean(axis=0)[output_indices])
            if gap > tol:
                raise UnsupportedModelError(
                    f"'deep' attributions do not add up to the model output (max |sum(phi) - "
                    f"(f(x) - E[f(background)])| = {gap:.3g}, tolerance {tol:.3g}); the "
                    f"model's operations passed the DeepLIFT checks, so please report this")
        return (values,)

    def _native_gradient(self, x: np.ndarray, output_indices: np.ndarray, bg: np.ndarray, *,
                         nsamples: int = 200, local_smoothing: float = 0.0, seed: int = 0,
                         layer: str | int | None = None) -> tuple[np.ndarray, ...]:
        """Expected gradients (:mod:`backends._jax_gradient`), of the image or of ``layer``."""
        nsamples = int(nsamples)
        fn: Callable[[Any, jax.Array], jax.Array] = self.module.apply
        inputs, refs = x, bg
        if layer is not None:  # expected gradients in the layer's activation space
            path = self._resolve_layer(layer)
            inputs, refs = self._activations(path, x), self._activations(path, bg)
            if inputs.ndim != 4:
                raise ConfigError(
                    f"layer '{_layer_name(path)}' outputs shape {inputs.shape[1:]} per image; "
                    f"layer attributions need a spatial (h, w, c) output")
            if inputs.shape[1] > self.spec.shape[0] or inputs.shape[2] > self.spec.shape[1]:
                raise ConfigError(f"layer '{_layer_name(path)}' ({inputs.shape[1]}x"
                                  f"{inputs.shape[2]}) is larger than the image")
            fn = self._head(path)
        key = jax.random.key(int(seed) % 2**32)
        chunk = self._chunk(nsamples, output_indices.shape[1])
        values = np.zeros((len(x), *inputs.shape[1:], output_indices.shape[1]))
        for i, (xi, idx) in enumerate(zip(inputs, output_indices)):
            phi = _jax_gradient.image_attributions(
                fn, self.variables, jax.random.fold_in(key, i), xi, refs, idx,
                nsamples=nsamples, local_smoothing=float(local_smoothing), chunk=chunk)
            values[i] = np.moveaxis(np.asarray(phi, dtype=np.float64), 0, -1)
        self.n_evals += len(bg) + len(x) * nsamples
        if layer is None:
            return (values,)
        return spread_to_image(values, self.spec.shape), values

    def _chunk(self, rows: int, n_outputs: int) -> int:
        """Rows per gradient pass so that rows x outputs stays near ``batch_size``, balanced."""
        n_chunks = -(-rows * n_outputs // self.batch_size)
        return -(-rows // n_chunks)

    # --- intermediate layers ------------------------------------------------------------------
    def _calls(self) -> list[tuple[LayerPath, bool]]:
        """(path, owns parameters) of every submodule ``__call__`` in one forward pass."""
        calls: list[tuple[LayerPath, bool]] = []

        def record(next_fun, args, kwargs, context):
            if context.method_name == "__call__" and context.module.path:
                own = self.variables["params"]
                for name in context.module.path:
                    own = own.get(name, {}) if isinstance(own, dict) else {}
                calls.append((tuple(context.module.path),
                              any(not isinstance(v, dict) for v in own.values())))
            return next_fun(*args, **kwargs)

        with nn.intercept_methods(record):  # a new function each time: no trace cache hit
            jax.eval_shape(lambda v, x: self.module.apply(v, x), self.variables,
                           jax.ShapeDtypeStruct((1, *self.spec.shape), jnp.float32))
        return calls

    def layer_names(self) -> list[str]:
        """Submodules that own parameters, in the order the forward pass first calls them."""
        names = [_layer_name(path) for path, owns in self._calls() if owns]
        return list(dict.fromkeys(names))

    def _resolve_layer(self, layer: str | int) -> LayerPath:
        """The submodule path of a layer given by name ("conv2", "block/conv") or index."""
        if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
            names = self.layer_names()
            if not -len(names) <= int(layer) < len(names):
                raise ConfigError(f"layer index {layer} out of range for layers {names}")
            layer = names[int(layer)]
        counts: dict[str, int] = {}
        for path, _ in self._calls():
            counts[_layer_name(path)] = counts.get(_layer_name(path), 0) + 1
        if layer not in counts:
            close = difflib.get_close_matches(str(layer), list(counts), n=3)
            hint = f" -- did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ConfigError(f"unknown layer '{layer}'{hint} (layers called in the forward "
                              f"pass: {', '.join(counts)})")
        if counts[layer] != 1:
            raise ConfigError(f"layer '{layer}' is called {counts[layer]} times per forward "
                              f"pass; attributions to it are ambiguous")
        return tuple(str(layer).split("/"))

    def _activations(self, path: LayerPath, x: np.ndarray) -> np.ndarray:
        """Output of the submodule at ``path`` for checked images ``x``."""
        if path not in self._features:
            module = self.module

            def features(variables: Any, batch: jax.Array) -> jax.Array:
                kept = []

                def keep(next_fun, args, kwargs, context):
                    out = next_fun(*args, **kwargs)
                    if context.method_name == "__call__" and tuple(context.module.path) == path:
                        kept.append(out)
                    return out

                with nn.intercept_methods(keep):
                    module.apply(variables, batch)
                return kept[0]

            self._features[path] = jax.jit(features)
        self.n_evals += len(x)
        return np.concatenate([np.asarray(self._features[path](self.variables,
                                                               x[i:i + self.batch_size]))
                               for i in range(0, len(x), self.batch_size)])

    # --- class activation maps (backends._cam) -------------------------------------------------
    def _conv_layer_names(self) -> list[str]:
        found: list[str] = []

        def record(next_fun, args, kwargs, context):
            if context.method_name == "__call__" and isinstance(context.module, nn.Conv):
                found.append(_layer_name(tuple(context.module.path)))
            return next_fun(*args, **kwargs)

        with nn.intercept_methods(record):
            jax.eval_shape(lambda v, x: self.module.apply(v, x), self.variables,
                           jax.ShapeDtypeStruct((1, *self.spec.shape), jnp.float32))
        return list(dict.fromkeys(found))

    def _layer_gradients(self, x: np.ndarray, output_indices: np.ndarray,
                         layer: str) -> tuple[np.ndarray, np.ndarray]:
        """``layer``'s activations, then jax.vjp of the model from there (:meth:`_head`) gives
        the gradient of each image's k-th explained score, for every k."""
        path = self._resolve_layer(layer)
        activations = self._activations(path, x)
        if path not in self._head_gradients:
            head = self._head(path)

            def gradients(variables: Any, a: jax.Array, idx: jax.Array) -> jax.Array:
                scores, pullback = jax.vjp(lambda z: head(variables, z), a)
                return jnp.stack([pullback(jax.nn.one_hot(idx[:, k], scores.shape[1],
                                                          dtype=scores.dtype))[0]
                                  for k in range(idx.shape[1])], axis=-1)

            self._head_gradients[path] = jax.jit(gradients)
        grads = self._head_gradients[path]
        return activations, np.concatenate([
            np.asarray(grads(self.variables, activations[i:i + self.batch_size],
                             output_indices[i:i + self.batch_size]))
            for i in range(0, len(x), self.batch_size)])

    def _layer_head(self, layer: str, activations: np.ndarray) -> np.ndarray:
        head = self._head(self._resolve_layer(layer))
        return np.concatenate([
            np.asarray(head(self.variables, jnp.asarray(activations[i:i + self.batch_size],
                                                        jnp.float32)), np.float64)
            for i in range(0, len(activations), self.batch_size)])

    def _head(self, path: LayerPath) -> Callable[[Any, jax.Array], jax.Array]:
        """The model from the output of ``path`` on: ``head(variables, a)`` runs the model with
        that output replaced by ``a`` (the layers before it see a zero image)."""
        if path not in self._heads:
            module, shape = self.module, self.spec.shape

            def head(variables: Any, a: jax.Array) -> jax.Array:
                def replace(next_fun, args, kwargs, context):
                    if context.method_name == "__call__" and tuple(context.module.path) == path:
                        return a
                    return next_fun(*args, **kwargs)

                with nn.intercept_methods(replace):
                    return module.apply(variables, jnp.zeros((a.shape[0], *shape), a.dtype))

            self._heads[path] = head
        return self._heads[path]

    # --- model life cycle ---------------------------------------------------------------------
    @classmethod
    def from_zoo(cls, architecture: str, spec: ImageSpec, *, seed: int = 0,
                 **arch_params: Any) -> "FlaxBackend":
        from backends.zoo import flax_models

        module = cls._zoo_model(flax_models.BUILDERS, architecture, spec, arch_params)
        variables = module.init(jax.random.key(int(seed)), jnp.zeros((1, *spec.shape)))
        return cls(module, variables, spec)

    #: the input layout of a user model that declares none
    user_layout = "NHWC"

    @classmethod
    def from_user(cls, spec: ImageSpec, *, weights: str | Path, model: str | None = None,
                  params: dict[str, Any] | None = None, layout: str | None = None,
                  value_range: tuple[float, float] = (0.0, 1.0),
                  base_dir: str | Path | None = None) -> "FlaxBackend":
        """A user's trained linen module: ``model`` ("pkg.module:CNN", a class or factory called
        with ``params``; imported with ``base_dir`` on ``sys.path``) with the variables in the
        msgpack file ``weights`` (``flax.serialization.to_bytes(variables)``), taking input in
        ``layout`` (default NHWC) with pixel values in ``value_range``. Checked on one batch."""
        weights = _user.require_file(weights, "weights")
        if model is None:
            raise ConfigError(f"a flax model needs model = \"pkg.module:CNN\" (its linen Module "
                              f"class or factory) next to weights = '{weights.name}'")
        module = _user.build(model, params or {}, base_dir)
        if not isinstance(module, nn.Module):
            raise ConfigError(f"model = '{model}' built a {type(module).__name__}, not a "
                              f"flax.linen.Module; name the Module class or its factory")
        try:
            state = flax.serialization.msgpack_restore(weights.read_bytes())
        except Exception as exc:  # noqa: BLE001 - msgpack raises many kinds here
            raise ConfigError(f"cannot read weights = '{weights.name}' as msgpack "
                              f"({type(exc).__name__}); save the variables with "
                              f"flax.serialization.to_bytes(variables)") from None
        if not isinstance(state, dict):
            raise ConfigError(f"weights = '{weights.name}' holds a {type(state).__name__}, not "
                              f"a dict of variables; save flax.serialization.to_bytes(variables)")
        variables = state if "params" in state else {"params": state}
        layout = layout or cls.user_layout
        scale, offset = _user.affine(value_range)
        _user.model_shape(spec, layout)  # checks the layout's name
        if layout == "NCHW" or (scale, offset) != (1.0, 0.0):
            module = _UserInput(module, layout == "NCHW", scale, offset)
            variables = {name: {"model": tree} for name, tree in variables.items()}
        label = f"flax model '{model}'"
        probe = jax.ShapeDtypeStruct((1, *spec.shape), jnp.float32)
        expected = _user.run_checked(lambda: jax.eval_shape(module.init, jax.random.key(0),
                                                            probe), spec, layout, label)
        try:
            check_checkpoint_shapes(weights, label, _shapes(expected), _shapes(variables))
        except XaibenchError as exc:
            raise ConfigError(f"{exc}; do model = '{model}' and its params build the trained "
                              f"architecture?") from None
        variables = jax.tree.map(jnp.asarray, variables)
        _user.check_first_batch(lambda x: module.apply(variables, x), spec, layout, label)
        return cls(module, variables, spec)

    def fit(self, x: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int = 256,
            lr: float = 1e-4, seed: int = 0, progress: bool = True) -> dict[str, list[float]]:
        """Adam on softmax cross-entropy (the Flax tutorial recipe), or mean squared error for a
        regression spec; returns loss (and accuracy for classification).

        A model with BatchNorm statistics (a ``batch_stats`` collection) must have a ``train``
        attribute (as the zoo's ``cifar_convnet``): it is trained as ``module.clone(train=True)``
        with the statistics updated from each batch, and no batch is padded (padding rows would
        enter the statistics).
        """
        import optax

        x, y = self._training_data(x, y, epochs=epochs, batch_size=batch_size, lr=lr)
        stats = {k: v for k, v in self.variables.items() if k != "params"}
        if stats and (set(stats) != {"batch_stats"} or not hasattr(self.module, "train")):
            raise UnsupportedModelError(
                f"fit trains models whose variables are 'params' and, for a module with a "
                f"`train` attribute switching its BatchNorm, 'batch_stats'; this one has "
                f"{sorted(self.variables)}: train it yourself and load its variables")
        module = self.module.clone(train=True) if stats else self.module
        optimizer = optax.adam(lr)
        regression = self.spec.task == "regression"

        @jax.jit
        def step(params, batch_stats, state, xb, yb, weight):
            def loss_fn(p):
                if batch_stats:
                    logits, updated = module.apply({"params": p, "batch_stats": batch_stats},
                                                   xb, mutable=["batch_stats"])
                else:
                    logits, updated = module.apply({"params": p}, xb), {}
                losses = ((logits[:, 0] - yb) ** 2 if regression
                          else optax.softmax_cross_entropy_with_integer_labels(logits, yb))
                return jnp.sum(losses * weight) / jnp.sum(weight), (logits, updated)

            (loss, (logits, updated)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            updates, state = optimizer.update(grads, state, params)
            correct = (jnp.zeros(()) if regression
                       else jnp.sum((jnp.argmax(logits, axis=1) == yb) * weight))
            return (optax.apply_updates(params, updates), updated.get("batch_stats", {}), state,
                    loss, correct)

        params, batch_stats = self.variables["params"], stats.get("batch_stats", {})
        state = optimizer.init(params)
        rng = np.random.default_rng(int(seed))
        n = len(x)
        history: dict[str, list[float]] = {"loss": [], **({} if regression else {"accuracy": []})}
        labels = y.astype(np.float32 if regression else np.int32)
        for epoch in range(epochs):
            order = rng.permutation(n)
            loss_sum = correct_sum = 0.0
            for start in self._epoch_bar(range(0, n, batch_size), epoch, epochs, progress):
                idx = order[start:start + batch_size]
                # one compiled step: pad with zero-weight rows (not with batch statistics)
                pad = 0 if stats else batch_size - len(idx)
                weight = np.r_[np.ones(len(idx)), np.zeros(pad)].astype(np.float32)
                idx = np.r_[idx, np.zeros(pad, idx.dtype)]
                params, batch_stats, state, loss, correct = step(
                    params, batch_stats, state, x[idx], labels[idx], weight)
                loss_sum += float(loss) * (len(idx) - pad)
                correct_sum += float(correct)
            history["loss"].append(loss_sum / max(n, 1))
            if not regression:
                history["accuracy"].append(correct_sum / max(n, 1))
            self._check_epoch_loss(history["loss"][-1], epoch=epoch, epochs=epochs, lr=lr)
        self.variables = {**self.variables, "params": params,
                          **({"batch_stats": batch_stats} if stats else {})}
        self._check_trained_weights(epochs=epochs, lr=lr)
        return history

    def nonfinite_weights(self) -> list[str]:
        """Variables ('collection/layer/name') holding NaN/Inf."""
        flat = jax.tree_util.tree_flatten_with_path(self.variables)[0]
        return [_path_name(keys) for keys, value in flat
                if jnp.issubdtype(jnp.result_type(value), jnp.floating)
                and not bool(jnp.isfinite(value).all())]

    def get_weights(self) -> Weights:
        """The ``params`` and ``batch_stats`` arrays by module path ("/" joined)."""
        unknown = sorted(set(self.variables) - {"params", "batch_stats"})
        if unknown:
            raise UnsupportedModelError(f"no weight-transfer rule for Flax collections "
                                        f"{unknown}; only params and batch_stats transfer")
        weights: Weights = {}
        for collection in ("params", "batch_stats"):
            for path, arrays in _array_nodes(self.variables.get(collection, {})).items():
                weights.setdefault(_layer_name(path), {}).update(
                    {key: np.asarray(value) for key, value in arrays.items()})
        return weights

    def _set_weights(self, weights: Weights) -> None:
        variables: dict[str, Any] = {}
        for name, params in weights.items():
            for key, value in params.items():
                node = variables.setdefault("batch_stats" if key in ("mean", "var")
                                            else "params", {})
                for part in name.split("/"):
                    node = node.setdefault(part, {})
                node[key] = jnp.asarray(value)
        self.variables = variables

    def save(self, path: Path) -> None:
        """Write the variables as msgpack (``flax.serialization``), atomically."""
        with replaced_atomically(path) as tmp:
            tmp.write_bytes(flax.serialization.to_bytes(self.variables))

    def load(self, path: Path) -> None:
        """Read variables written by :meth:`save`; names and shapes must match the model."""
        path = Path(path)
        if not path.is_file():
            raise XaibenchError(f"no flax checkpoint at {path}")
        try:
            state = flax.serialization.msgpack_restore(path.read_bytes())
        except Exception as exc:
            raise XaibenchError(f"cannot read flax checkpoint {path}: {exc}") from exc
        if not isinstance(state, dict):
            raise XaibenchError(f"cannot read flax checkpoint {path}: it holds a "
                                f"{type(state).__name__}, not a dict of variables")
        check_checkpoint_shapes(path, type(self.module).__name__, _shapes(self.variables),
                                _shapes(state))
        self.variables = jax.tree.map(jnp.asarray, state)

    # --- model randomisation (sanity checks) ----------------------------------------------------
    def randomized(self, n_layers: int, *, seed: int = 0) -> "FlaxBackend":
        """A copy whose last ``n_layers`` parameter layers (output side) are re-initialised."""
        top = self._top_layers(n_layers)
        fresh = self.module.init(jax.random.key(int(seed)), jnp.zeros((1, *self.spec.shape)))
        params = flax.core.unfreeze(self.variables["params"])
        for name in top:
            *parents, leaf = name.split("/")
            src, dst = fresh["params"], params
            for part in parents:
                src, dst = src[part], dst[part]
            dst[leaf] = src[leaf]
        return type(self)(self.module, {**self.variables, "params": params}, self.spec,
                          batch_size=self.batch_size)


def _array_nodes(tree: Any, prefix: LayerPath = ()) -> dict[LayerPath, dict[str, Any]]:
    """Module path -> {name: array} for every node of a variables tree holding arrays."""
    found: dict[LayerPath, dict[str, Any]] = {}
    arrays = {k: v for k, v in tree.items() if not isinstance(v, dict)}
    if arrays:
        found[prefix] = arrays
    for key, value in tree.items():
        if isinstance(value, dict):
            found.update(_array_nodes(value, (*prefix, key)))
    return found


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    """'collection/layer/name' -> shape of every array in a nested dict of variables."""
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {_path_name(keys): tuple(np.shape(v)) for keys, v in flat}


def _path_name(keys: tuple[Any, ...]) -> str:
    """'collection/layer/name' of a pytree key path."""
    return "/".join(str(getattr(k, "key", k)) for k in keys)
