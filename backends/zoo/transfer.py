"""Copy weights between the torch, Keras and Flax versions of a model.

Weights pass through one framework-neutral layout, :data:`Weights`: layer name -> parameter
name -> numpy array, in Flax/Keras conventions:

- ``kernel``: convolutions (kh, kw, in, out) (HWIO; torch stores (out, in, kh, kw)), dense
  layers (in, out) (torch stores (out, in));
- ``bias``; batch normalisation: ``scale``, ``bias``, ``mean``, ``var`` (running statistics).

Layer names are the module / layer names (nested torch and Flax modules joined with "/"); the
zoo gives every layer the same name in all three frameworks. Nothing is permuted beyond the
kernel layouts: the zoo flattens feature maps in H, W, C order everywhere, so dense rows after
a flatten already line up. Batch-normalisation epsilons are part of the architecture, not of
the weights (torch and Flax default to 1e-5, Keras to 1e-3) and are not changed here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xaibench.backend import Backend
from xaibench.errors import ConfigError, UnsupportedModelError

#: layer name -> parameter name -> array (see the module docstring for the layouts)
Weights = dict[str, dict[str, np.ndarray]]

_BN_TORCH = {"scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}
_TORCH_ATTR = {"kernel": "weight", **_BN_TORCH}
_BN_KERAS = {"scale": "gamma", "bias": "beta", "mean": "moving_mean", "var": "moving_variance"}
_FLAX_STATS = ("mean", "var")


# --- torch ------------------------------------------------------------------------------------
def _torch_layers(module: Any) -> dict[str, Any]:
    """Canonical name -> submodule, for every submodule that owns parameters or buffers."""
    return {name.replace(".", "/"): sub for name, sub in module.named_modules()
            if next(sub.parameters(recurse=False), None) is not None
            or next(sub.buffers(recurse=False), None) is not None}


def from_torch(module: Any) -> Weights:
    """The weights of a ``torch.nn.Module`` in the canonical layout."""
    from torch import nn

    weights: Weights = {}
    for name, layer in _torch_layers(module).items():
        if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            kernel = layer.weight.detach().cpu().numpy()  # (out, in, *k)
            weights[name] = {"kernel": kernel.transpose(*range(2, kernel.ndim), 1, 0)}
            if layer.bias is not None:
                weights[name]["bias"] = layer.bias.detach().cpu().numpy()
        elif isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            weights[name] = {key: getattr(layer, attr).detach().cpu().numpy()
                             for key, attr in _BN_TORCH.items()
                             if getattr(layer, attr, None) is not None}
        else:
            raise UnsupportedModelError(f"no weight-transfer rule for torch layer '{name}' "
                                        f"({type(layer).__name__})")
    return weights


def to_torch(weights: Weights, module: Any) -> None:
    """Load canonical ``weights`` into a ``torch.nn.Module`` (in place)."""
    import torch

    _check_same_layout(weights, from_torch(module), "torch model")
    layers = _torch_layers(module)
    with torch.no_grad():
        for name, params in weights.items():
            for key, value in params.items():
                if key == "kernel":  # (*k, in, out) -> (out, in, *k)
                    value = value.transpose(value.ndim - 1, value.ndim - 2, *range(value.ndim - 2))
                tensor = getattr(layers[name], _TORCH_ATTR[key])
                tensor.copy_(torch.from_numpy(np.array(value)).to(tensor))


# --- keras ------------------------------------------------------------------------------------
def _keras_layers(model: Any) -> dict[str, Any]:
    """Layer name -> layer, for every (nested) layer that owns weights."""
    found: dict[str, Any] = {}
    for layer in getattr(model, "layers", []):
        if getattr(layer, "layers", None):
            found.update(_keras_layers(layer))
        elif layer.weights:
            found[layer.name] = layer
    return found


def from_keras(model: Any) -> Weights:
    """The weights of a Keras 3 model in the canonical layout."""
    import keras

    weights: Weights = {}
    for name, layer in _keras_layers(model).items():
        if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
                              keras.layers.Dense)):
            weights[name] = {"kernel": np.asarray(layer.kernel)}
            if layer.bias is not None:
                weights[name]["bias"] = np.asarray(layer.bias)
        elif isinstance(layer, keras.layers.BatchNormalization):
            weights[name] = {key: np.asarray(getattr(layer, attr))
                             for key, attr in _BN_KERAS.items()
                             if getattr(layer, attr, None) is not None}
        else:
            raise UnsupportedModelError(f"no weight-transfer rule for Keras layer '{name}' "
                                        f"({type(layer).__name__})")
    return weights


def to_keras(weights: Weights, model: Any) -> None:
    """Load canonical ``weights`` into a Keras 3 model (in place)."""
    import keras

    _check_same_layout(weights, from_keras(model), "Keras model")
    layers = _keras_layers(model)
    for name, params in weights.items():
        batchnorm = isinstance(layers[name], keras.layers.BatchNormalization)
        for key, value in params.items():
            getattr(layers[name], _BN_KERAS[key] if batchnorm else key).assign(value)


# --- flax -------------------------------------------------------------------------------------
def _flax_layers(tree: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], dict]:
    """Module path -> {name: array} for every Flax module node that holds arrays directly."""
    found: dict[tuple[str, ...], dict] = {}
    arrays = {k: v for k, v in tree.items() if not isinstance(v, dict)}
    if arrays:
        found[prefix] = arrays
    for key, value in tree.items():
        if isinstance(value, dict):
            found.update(_flax_layers(value, (*prefix, key)))
    return found


def from_flax(variables: Any) -> Weights:
    """The weights of Flax ``variables`` ({"params": ..., "batch_stats": ...})."""
    weights: Weights = {}
    for collection in ("params", "batch_stats"):
        for path, arrays in _flax_layers(dict(variables.get(collection, {}))).items():
            weights.setdefault("/".join(path), {}).update(
                {key: np.asarray(value) for key, value in arrays.items()})
    unknown = sorted(set(variables) - {"params", "batch_stats"})
    if unknown:
        raise UnsupportedModelError(f"no weight-transfer rule for Flax collections {unknown}")
    return weights


def to_flax(weights: Weights, variables: Any) -> dict[str, Any]:
    """New Flax variables shaped like ``variables`` holding canonical ``weights``."""
    import jax.numpy as jnp

    _check_same_layout(weights, from_flax(variables), "Flax model")
    new: dict[str, Any] = {}
    for name, params in weights.items():
        for key, value in params.items():
            node = new.setdefault("batch_stats" if key in _FLAX_STATS else "params", {})
            for part in name.split("/"):
                node = node.setdefault(part, {})
            node[key] = jnp.asarray(value)
    return new


# --- backends ---------------------------------------------------------------------------------
def get_weights(backend: Backend) -> Weights:
    """The canonical weights of a torch, Keras or Flax backend."""
    if backend.name == "torch":
        return from_torch(backend.module)
    if backend.name == "keras":
        return from_keras(backend.model)
    if backend.name == "flax":
        return from_flax(backend.variables)
    raise ConfigError(f"no weight transfer for backend '{backend.name}'")


def set_weights(backend: Backend, weights: Weights) -> None:
    """Load canonical ``weights`` into a torch, Keras or Flax backend's model (in place)."""
    if backend.name == "torch":
        to_torch(weights, backend.module)
    elif backend.name == "keras":
        to_keras(weights, backend.model)
    elif backend.name == "flax":
        backend.variables = to_flax(weights, backend.variables)
    else:
        raise ConfigError(f"no weight transfer for backend '{backend.name}'")


def copy_weights(source: Backend, target: Backend) -> None:
    """Give ``target`` the weights of ``source`` (same zoo architecture, any frameworks)."""
    set_weights(target, get_weights(source))


def _check_same_layout(weights: Weights, target: Weights, what: str) -> None:
    """Raise ConfigError unless ``weights`` has the layers, names and shapes of ``target``."""
    problems = [f"missing layer '{name}'" for name in target if name not in weights]
    problems += [f"unexpected layer '{name}'" for name in weights if name not in target]
    for name in set(weights) & set(target):
        if set(weights[name]) != set(target[name]):
            problems.append(f"layer '{name}' has {sorted(weights[name])}, the {what} expects "
                            f"{sorted(target[name])}")
            continue
        problems += [f"'{name}/{key}' has shape {np.shape(value)}, the {what} expects "
                     f"{target[name][key].shape}"
                     for key, value in weights[name].items()
                     if np.shape(value) != target[name][key].shape]
    if problems:
        raise ConfigError(f"weights do not fit the {what}: " + "; ".join(problems))
