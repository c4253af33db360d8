"""PyTorch backend: an ``nn.Module`` (NCHW inside) behind the numpy NHWC :class:`Backend` API.

Native explainers are shap's ``DeepExplainer`` (DeepLIFT rescale) and ``GradientExplainer``
(expected gradients). Both are run *per requested output class* on a one-column view of the
model (:class:`_OutputColumn`), only for the images that need that class. That

- costs one pass per (image, requested output) instead of one per (image, class),
- gives the right base value (the expected output of that class over the background),
- avoids shap's ``ranked_outputs`` + additivity-check bug (it compares the wrong columns).
"""

from __future__ import annotations

import copy
import difflib
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from xaibench._files import replaced_atomically
from xaibench.backend import (DEFAULT_BATCH_SIZE, Backend, ImageSpec, Weights,
                              check_checkpoint_shapes)
from xaibench.errors import ConfigError, MissingFrameworkError, UnsupportedModelError, XaibenchError

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise MissingFrameworkError("torch", "torch") from exc

from backends import _torch_checks, _user
from backends._cam import CAM_METHODS, ClassActivationMaps
from backends._shap_native import (additivity_gap, explain_by_class,
                                   global_numpy_rng_preserved, spread_to_image)


class _OutputColumn(nn.Module):
    """``model(x)[:, column:column + 1]`` -- one model output as a (N, 1) model for shap."""

    def __init__(self, model: nn.Module, column: int) -> None:
        super().__init__()
        self.model = model
        self.column = column

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, self.column:self.column + 1]


def _check_additivity(cls: int, phi: np.ndarray, fx: np.ndarray, expected: float,
                      unrecognised: list[str]) -> None:
    """Raise UnsupportedModelError when DeepLIFT values do not sum to f(x) - E[f(bg)]."""
    gap, tol = additivity_gap(phi[..., None], fx[:, None], expected)
    if gap > tol:
        hint = (f" shap passed gradients unchanged through modules it does not know: "
                f"{', '.join(unrecognised)}." if unrecognised else "")
        raise UnsupportedModelError(
            f"'deep' attributions for output {cls} do not add up to the model output "
            f"(max |sum(phi) - (f(x) - E[f(background)])| = {gap:.3g}, tolerance "
            f"{tol:.3g}): the model uses an operation shap's DeepExplainer cannot see or "
            f"handle -- typically a functional nonlinearity in forward() (F.relu, "
            f"torch.sigmoid, x.clamp(min=0), ...) instead of an nn.Module, or an in-place "
            f"update such as `out += x`. Use one nn.ReLU() (etc.) instance per use, "
            f"out-of-place.{hint}")


class _FromLayer(nn.Module):
    """The model from ``layer``'s output onwards: ``forward(a)`` runs the model with that
    layer's output replaced by ``a`` (the layers before it see a constant dummy input)."""

    def __init__(self, model: nn.Module, layer: nn.Module, dummy: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        object.__setattr__(self, "layer", layer)  # already a submodule of model
        self.register_buffer("dummy", dummy, persistent=False)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        handle = self.layer.register_forward_hook(lambda _m, _i, _o: a)
        try:
            return self.model(self.dummy.expand(len(a), *self.dummy.shape[1:]))
        finally:
            handle.remove()


class _UserInput(nn.Module):
    """A user's model behind the backend's NCHW input in [0, 1]: the input is mapped linearly
    onto the model's value range and permuted to NHWC if the model takes that, inside the
    graph, so gradients (deep, gradient) stay in the dataset's input space."""

    def __init__(self, model: nn.Module, *, nhwc: bool, scale: float, offset: float) -> None:
        super().__init__()
        self.model = model
        self.nhwc, self.scale, self.offset = nhwc, scale, offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self.scale, self.offset) != (1.0, 0.0):
            x = x * self.scale + self.offset
        return self.model(x.permute(0, 2, 3, 1) if self.nhwc else x)


def _is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip holding the model's code)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


class TorchBackend(ClassActivationMaps, Backend):
    """A PyTorch ``nn.Module`` taking NCHW float input and returning (N, n_classes) scores."""

    name = "torch"
    native_methods = {"deep": ("check_additivity",),
                      "gradient": ("nsamples", "local_smoothing", "seed", "layer"),
                      **CAM_METHODS}

    def __init__(self, module: nn.Module, spec: ImageSpec, *,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        super().__init__(spec, batch_size=batch_size)
        if not isinstance(module, nn.Module):
            raise XaibenchError(f"TorchBackend needs a torch.nn.Module, got {type(module).__name__}")
        self.module = module.eval()
        param = next(module.parameters(), None)
        self.device = param.device if param is not None else torch.device("cpu")
        self.dtype = param.dtype if param is not None and param.is_floating_point() \
            else torch.float32
        self._on_cpu = self.device.type == "cpu"
        probe = self._to_tensor(np.zeros((1, *spec.shape), np.float32))
        with torch.inference_mode():
            out = module(probe)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, spec.n_classes):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise XaibenchError(
                f"the model must map (N, {spec.shape[2]}, {spec.shape[0]}, {spec.shape[1]}) "
                f"(NCHW) to (N, {spec.n_classes}) scores; for one image it returned {shape}")

    # --- conversion ---------------------------------------------------------------------------
    def _to_tensor(self, x: np.ndarray) -> torch.Tensor:
        """NHWC numpy -> NCHW tensor on the model's device and dtype (contiguous)."""
        if not x.flags.writeable:  # torch.from_numpy warns on read-only arrays
            x = x.copy()
        t = torch.from_numpy(x)
        if t.dtype != self.dtype or not self._on_cpu:
            t = t.to(self.device, self.dtype)
        return t.permute(0, 3, 1, 2).contiguous()

    # --- prediction ---------------------------------------------------------------------------
    def _predict_batch(self, x: np.ndarray) -> np.ndarray:
        module = self.module
        if module.training:
            module.eval()
        with torch.inference_mode():
            out = module(self._to_tensor(x))
        if out.dtype != torch.float32 or not out.is_cpu:
            out = out.to("cpu", torch.float32)
        return out.numpy()

    def _scores(self, t: torch.Tensor) -> np.ndarray:
        """(N, K) float64 scores of an NCHW tensor, batched; not counted as evaluations."""
        with torch.inference_mode():
            parts = [self.module(t[i:i + self.batch_size]).double().cpu().numpy()
                     for i in range(0, len(t), self.batch_size)]
        return np.concatenate(parts)

    # --- native explainers --------------------------------------------------------------------
    def _native_explain(self, method: str, x: np.ndarray, output_indices: np.ndarray, *,
                        background: np.ndarray, **params: Any) -> tuple[np.ndarray, ...]:
        """As :meth:`Backend._native_explain`, with the module in eval mode; everything shap
        attaches to it (hooks, tensors) is removed afterwards."""
        self.module.eval()
        with _torch_checks.module_state_restored(self.module):
            return super()._native_explain(method, x, output_indices, background=background,
                                           **params)

    def _native_deep(self, x: np.ndarray, output_indices: np.ndarray, background: np.ndarray,
                     *, check_additivity: bool = True) -> tuple[np.ndarray]:
        """DeepLIFT per distinct class, each on a one-column view of the model."""
        import shap

        x, bg = self._to_tensor(x), self._to_tensor(background)
        unrecognised = _torch_checks.check_deep_supported(self.module, bg[:1])

        def explain_class(cls: int, images: np.ndarray) -> np.ndarray:
            try:
                explainer = shap.DeepExplainer(_OutputColumn(self.module, cls), bg)
                phi = explainer.shap_values(x[images], check_additivity=False)[..., 0]
            except RuntimeError as exc:
                raise UnsupportedModelError(
                    f"shap's DeepExplainer failed on this model ({exc}). This usually means an "
                    "in-place operation (`out += x`, `x.relu_()`, inplace=True) or an operation "
                    "its backward hooks cannot handle; rewrite it out-of-place "
                    "(`out = out + x`).") from exc
            # the expected value over the background, then one (image + background) pass each
            self.n_evals += len(bg) * (1 + 2 * len(images))
            if check_additivity:
                expected = float(np.asarray(explainer.expected_value).reshape(-1)[0])
                _check_additivity(cls, phi, self._scores(x[images])[:, cls], expected,
                                  unrecognised)
            return phi.transpose(0, 2, 3, 1)  # NCHW -> NHWC

        return (explain_by_class(output_indices, explain_class),)

    def _native_gradient(self, x: np.ndarray, output_indices: np.ndarray,
                         background: np.ndarray, *, nsamples: int = 200,
                         local_smoothing: float = 0.0, seed: int = 0,
                         layer: str | int | None = None) -> tuple[np.ndarray, ...]:
        """Expected gradients per distinct class (shap's torch GradientExplainer).

        With ``layer``, in the space of that layer's output: the model is split there
        (:class:`_FromLayer`) and the images and background are replaced by their activations.
        """
        import shap

        nsamples, seed = int(nsamples), int(seed) % 2**32
        x, bg = self._to_tensor(x), self._to_tensor(background)
        model: nn.Module = self.module
        if layer is not None:
            name, module = self._resolve_layer(layer, x[:1])
            scores = self._scores(x[:self.batch_size])
            x, bg = self._activations(module, x), self._activations(module, bg)
            if x.ndim != 4:
                raise ConfigError(
                    f"layer '{name}' outputs shape {tuple(x.shape)}; layer attributions need a "
                    f"spatial (N, C, h, w) output (a convolution or an activation after one)")
            model = _FromLayer(self.module, module, self._to_tensor(
                np.zeros((1, *self.spec.shape), np.float32)))
            with torch.no_grad():  # the output must depend on the image only through the layer
                head = model(x[:self.batch_size]).double().cpu().numpy()
            if not np.allclose(head, scores[:self.batch_size], rtol=1e-4, atol=1e-5):
                raise ConfigError(
                    f"the model output does not depend on the input only through layer "
                    f"'{name}' (e.g. a skip connection bypasses it); choose another layer")

        def explain_class(cls: int, images: np.ndarray) -> np.ndarray:
            torch.manual_seed(seed)  # local_smoothing noise: the same for every class
            explainer = shap.GradientExplainer(
                _OutputColumn(model, cls), bg, batch_size=min(nsamples, self.batch_size),
                local_smoothing=float(local_smoothing))
            phi = explainer.shap_values(x[images], nsamples=nsamples, rseed=seed)
            self.n_evals += len(bg) + len(images) * nsamples
            return np.asarray(phi)[..., 0].transpose(0, 2, 3, 1)  # NCHW -> NHWC

        devices = [self.device] if self.device.type == "cuda" else []
        with global_numpy_rng_preserved(), torch.random.fork_rng(devices=devices):
            values = explain_by_class(output_indices, explain_class)
        if layer is None:
            return (values,)
        return spread_to_image(values, self.spec.shape), values

    # --- class activation maps (backends._cam) ---------------------------------------------------
    def _conv_layer_names(self) -> list[str]:
        probe = self._to_tensor(np.zeros((1, *self.spec.shape), np.float32))
        return [name for name, (mod, _) in _torch_checks.call_counts(self.module, probe).items()
                if isinstance(mod, nn.Conv2d)]

    def _layer_gradients(self, x: np.ndarray, output_indices: np.ndarray,
                         layer: str) -> tuple[np.ndarray, np.ndarray]:
        """One forward pass per batch keeps ``layer``'s output (a forward hook); autograd gives
        the gradient of each image's k-th explained score, for every k."""
        _, module = self._resolve_layer(layer, self._to_tensor(x[:1]))
        kept: list[torch.Tensor] = []
        handle = module.register_forward_hook(lambda _m, _i, output: kept.append(output))
        activations, gradients = [], []
        try:
            for start in range(0, len(x), self.batch_size):
                kept.clear()
                scores = self.module(self._to_tensor(x[start:start + self.batch_size]))
                idx = torch.from_numpy(output_indices[start:start + self.batch_size]).to(
                    self.device)
                explained = scores.gather(1, idx)
                grads = [torch.autograd.grad(explained[:, k].sum(), kept[0],
                                             retain_graph=k + 1 < idx.shape[1])[0]
                         for k in range(idx.shape[1])]
                activations.append(kept[0].detach().permute(0, 2, 3, 1).double().cpu().numpy())
                gradients.append(torch.stack(grads, -1).permute(0, 2, 3, 1, 4)
                                 .double().cpu().numpy())
        finally:
            handle.remove()
        self.n_evals += len(x)
        return np.concatenate(activations), np.concatenate(gradients)

    def _layer_head(self, layer: str, activations: np.ndarray) -> np.ndarray:
        _, module = self._resolve_layer(layer, self._to_tensor(np.zeros((1, *self.spec.shape),
                                                                        np.float32)))
        head = _FromLayer(self.module, module,
                          self._to_tensor(np.zeros((1, *self.spec.shape), np.float32)))
        a = torch.from_numpy(np.ascontiguousarray(activations.transpose(0, 3, 1, 2))).to(
            self.device, self.dtype)
        with torch.no_grad():
            return np.concatenate([head(a[i:i + self.batch_size]).double().cpu().numpy()
                                   for i in range(0, len(a), self.batch_size)])

    def _activations(self, module: nn.Module, t: torch.Tensor) -> torch.Tensor:
        """Output of ``module`` (a submodule of the model) for the NCHW batch ``t``."""
        parts: list[torch.Tensor] = []

        def keep(_mod: nn.Module, _inputs: object, output: object) -> None:
            if not isinstance(output, torch.Tensor):
                raise ConfigError(f"layer outputs {type(output).__name__}, not a tensor")
            parts.append(output.detach())

        handle = module.register_forward_hook(keep)
        try:
            with torch.no_grad():
                for i in range(0, len(t), self.batch_size):
                    self.module(t[i:i + self.batch_size])
        finally:
            handle.remove()
        self.n_evals += len(t)
        return torch.cat(parts)

    def _resolve_layer(self, layer: str | int, probe: torch.Tensor) -> tuple[str, nn.Module]:
        """(name, module) of a layer given by its name (as in ``named_modules()``) or by an
        index into the leaf modules in the order the forward pass calls them."""
        called = _torch_checks.call_counts(self.module, probe)
        if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
            names = [n for n, (m, _) in called.items() if n and _torch_checks.is_leaf(m)]
            if not -len(names) <= int(layer) < len(names):
                raise ConfigError(f"layer index {layer} out of range for layers {names}")
            name = names[int(layer)]
        else:
            name = str(layer)
        if name not in called or not name:
            known = [n for n in called if n]
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" -- did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ConfigError(f"unknown layer '{name}'{hint} (layers used in forward: "
                              f"{', '.join(known)})")
        module, n_calls = called[name]
        if n_calls != 1:
            raise ConfigError(f"layer '{name}' is called {n_calls} times per forward pass; "
                              f"attributions to it are ambiguous")
        return name, module

    # --- model life cycle ---------------------------------------------------------------------
    @classmethod
    def from_zoo(cls, architecture: str, spec: ImageSpec, *, seed: int = 0,
                 **arch_params: Any) -> "TorchBackend":
        from backends.zoo import torch_models

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = cls._zoo_model(torch_models.BUILDERS, architecture, spec, arch_params)
        return cls(module, spec)

    #: the input layout of a user model that declares none
    user_layout = "NCHW"

    @classmethod
    def from_user(cls, spec: ImageSpec, *, weights: str | Path, model: str | None = None,
                  params: dict[str, Any] | None = None, layout: str | None = None,
                  value_range: tuple[float, float] = (0.0, 1.0),
                  base_dir: str | Path | None = None) -> "TorchBackend":
        """A user's trained model: ``model`` ("pkg.module:Net", a class or factory called with
        ``params``; imported with ``base_dir`` on ``sys.path``) with the state_dict
        ``weights``, or without ``model`` a TorchScript archive. It takes input in ``layout``
        (default NCHW) with pixel values in ``value_range``; checked on one batch."""
        weights = _user.require_file(weights, "weights")
        layout = layout or cls.user_layout
        label = f"torch model {model or weights.name!r}"
        if weights.suffix == ".pt2":
            raise ConfigError(
                f"weights = '{weights.name}' is a torch.export archive, which cannot be switched "
                f"to eval mode; save TorchScript (torch.jit.script(net).save('net.ts')) or a "
                f"state_dict (torch.save(net.state_dict(), 'net.pt')) with model = ...")
        if model is None:
            module = cls._load_torchscript(weights)
        elif _is_torchscript(weights):
            raise ConfigError(
                f"weights = '{weights.name}' is a TorchScript archive, which holds its own "
                f"architecture, but model = '{model}' is set too; remove model (and params), or "
                f"save a state_dict: torch.save(net.state_dict(), '{weights.stem}.pt')")
        else:
            module = _user.build(model, params or {}, base_dir)
            if not isinstance(module, nn.Module):
                raise ConfigError(f"model = '{model}' built a {type(module).__name__}, not a "
                                  f"torch.nn.Module; name the nn.Module class or its factory")
            cls._load_state(module, weights, f"model = '{model}'")
        scale, offset = _user.affine(value_range)
        _user.model_shape(spec, layout)  # checks the layout's name
        if layout == "NHWC" or (scale, offset) != (1.0, 0.0):
            module = _UserInput(module, nhwc=layout == "NHWC", scale=scale, offset=offset)
        module.eval()

        def forward(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return module(torch.from_numpy(x).permute(0, 3, 1, 2)).float().numpy()

        _user.check_first_batch(forward, spec, layout, label)
        return cls(module, spec)

    @staticmethod
    def _load_torchscript(path: Path) -> nn.Module:
        try:
            return torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds here
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ConfigError(
                f"weights = '{path.name}' without model is read as a TorchScript archive, but "
                f"it is not one ({type(exc).__name__}: {first}); for a state_dict set "
                f"model = \"pkg.module:Net\", or save torch.jit.script(net).save('net.ts')") \
                from None

    @staticmethod
    def _load_state(module: nn.Module, path: Path, what: str) -> None:
        """Load the state_dict file ``path`` into ``module``; mismatches raise ConfigError."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds here
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ConfigError(f"cannot read weights = '{path.name}' as a state_dict "
                              f"({type(exc).__name__}: {first}); save it with "
                              f"torch.save(net.state_dict(), '{path.name}')") from None
        if not isinstance(state, dict):
            raise ConfigError(f"weights = '{path.name}' holds a {type(state).__name__}, not a "
                              f"state_dict; save it with torch.save(net.state_dict(), "
                              f"'{path.name}')")
        try:
            check_checkpoint_shapes(path, type(module).__name__, _shapes(module.state_dict()),
                                    _shapes(state))
        except XaibenchError as exc:
            raise ConfigError(f"{exc}; do {what} and its params build the trained "
                              f"architecture?") from None
        module.load_state_dict(state)

    def fit(self, x: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int, lr: float,
            seed: int, progress: bool = True) -> dict[str, list[float]]:
        x, y = self._training_data(x, y, epochs=epochs, batch_size=batch_size, lr=lr)
        regression = self.spec.task == "regression"
        xt = self._to_tensor(x)
        yt = torch.from_numpy(y.astype(np.float32 if regression else np.int64)).to(self.device)
        n = len(xt)
        history: dict[str, list[float]] = {"loss": [], **({} if regression else {"accuracy": []})}
        gen = torch.Generator().manual_seed(int(seed))
        module = self.module
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(seed))  # dropout and other random layers
            optimizer = torch.optim.Adam(module.parameters(), lr=lr)
            module.train()
            try:
                for epoch in range(epochs):
                    order = torch.randperm(n, generator=gen).to(self.device)
                    loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
                    correct = torch.zeros((), dtype=torch.int64, device=self.device)
                    for start in self._epoch_bar(range(0, n, batch_size), epoch, epochs,
                                                 progress):
                        idx = order[start:start + batch_size]
                        xb, yb = xt[idx], yt[idx]
                        optimizer.zero_grad(set_to_none=True)
                        logits = module(xb)
                        loss = (nn.functional.mse_loss(logits[:, 0].to(yb.dtype), yb)
                                if regression else nn.functional.cross_entropy(logits, yb))
                        loss.backward()
                        optimizer.step()
                        with torch.no_grad():
                            loss_sum += loss.detach().double() * len(idx)
                            if not regression:
                                correct += (logits.argmax(dim=1) == yb).sum()
                    history["loss"].append(float(loss_sum) / max(n, 1))
                    if not regression:
                        history["accuracy"].append(float(correct) / max(n, 1))
                    self._check_epoch_loss(history["loss"][-1], epoch=epoch, epochs=epochs,
                                           lr=lr)
            finally:
                module.eval()
        self._check_trained_weights(epochs=epochs, lr=lr)
        return history

    def nonfinite_weights(self) -> list[str]:
        """Parameters and floating-point buffers (e.g. BatchNorm statistics) with NaN/Inf."""
        return [name for name, tensor in self.module.state_dict().items()
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]

    def get_weights(self) -> Weights:
        """Convolution / dense kernels and biases and batch-norm parameters and statistics,
        by submodule name ("." joined as "/"); kernels transposed to (*k, in, out)."""
        weights: Weights = {}
        for name, layer in _weighted_modules(self.module).items():
            if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
                kernel = layer.weight.detach().cpu().numpy()  # (out, in, *k)
                weights[name] = {"kernel": kernel.transpose(*range(2, kernel.ndim), 1, 0)}
                if layer.bias is not None:
                    weights[name]["bias"] = layer.bias.detach().cpu().numpy()
            elif isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
                weights[name] = {key: getattr(layer, attr).detach().cpu().numpy()
                                 for key, attr in _BATCHNORM.items()
                                 if getattr(layer, attr, None) is not None}
            else:
                raise UnsupportedModelError(f"no weight-transfer rule for torch layer '{name}' "
                                            f"({type(layer).__name__}); use convolutions, "
                                            f"linear and batch-norm layers only")
        return weights

    def _set_weights(self, weights: Weights) -> None:
        layers = _weighted_modules(self.module)
        with torch.no_grad():
            for name, params in weights.items():
                for key, value in params.items():
                    if key == "kernel":  # (*k, in, out) -> (out, in, *k)
                        value = value.transpose(value.ndim - 1, value.ndim - 2,
                                                *range(value.ndim - 2))
                    tensor = getattr(layers[name], {"kernel": "weight", **_BATCHNORM}[key])
                    tensor.copy_(torch.from_numpy(np.array(value)).to(tensor))

    def save(self, path: Path) -> None:
        with replaced_atomically(path) as tmp:
            torch.save(self.module.state_dict(), tmp)

    def load(self, path: Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise XaibenchError(f"no torch checkpoint at {path}")
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:
            raise XaibenchError(f"cannot read torch checkpoint {path}: {exc}") from exc
        if not isinstance(state, dict):
            raise XaibenchError(f"{path} does not hold a state_dict (got {type(state).__name__})")
        check_checkpoint_shapes(path, type(self.module).__name__,
                                _shapes(self.module.state_dict()), _shapes(state))
        self.module.load_state_dict(state)
        self.module.eval()

    # --- model randomisation (sanity checks) ----------------------------------------------------
    def layer_names(self) -> list[str]:
        """Submodules that own parameters, in the order the forward pass first calls them."""
        probe = self._to_tensor(np.zeros((1, *self.spec.shape), np.float32))
        return [name for name, (mod, _) in _torch_checks.call_counts(self.module, probe).items()
                if next(mod.parameters(recurse=False), None) is not None]

    def randomized(self, n_layers: int, *, seed: int = 0) -> "TorchBackend":
        top = self._top_layers(n_layers)
        module = copy.deepcopy(self.module)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(seed))
            for name in reversed(top):  # output side first
                layer = module.get_submodule(name)
                if not callable(getattr(layer, "reset_parameters", None)):
                    raise UnsupportedModelError(
                        f"layer '{name}' ({type(layer).__name__}) has no reset_parameters(); "
                        f"cannot re-initialise it")
                layer.reset_parameters()
        return type(self)(module, self.spec, batch_size=self.batch_size)


#: canonical batch-norm parameter name -> torch attribute
_BATCHNORM = {"scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}


def _weighted_modules(module: nn.Module) -> dict[str, nn.Module]:
    """Canonical name -> submodule, for every submodule that owns parameters or buffers."""
    return {name.replace(".", "/"): sub for name, sub in module.named_modules()
            if next(sub.parameters(recurse=False), None) is not None
            or next(sub.buffers(recurse=False), None) is not None}


def _shapes(state: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Entry name -> shape of every tensor in a state_dict."""
    return {name: tuple(np.shape(value)) for name, value in state.items()}
