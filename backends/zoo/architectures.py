"""Framework-free descriptions of the zoo architectures.

Each framework module ``backends.zoo.<framework>_models`` defines a builder with the same name,
``builder(spec, **params)``; this catalogue declares which frameworks implement it and the
builder's keyword params (type and default), so configs are validated against it without
importing any framework (tests/unit/experiment/test_config.py checks it against the builders).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from xaibench.errors import ConfigError


@dataclass(frozen=True)
class Param:
    """A keyword param of an architecture's builders: its type (an annotation) and default."""

    type: Any
    default: Any


@dataclass(frozen=True)
class Architecture:
    """A named architecture, the frameworks that implement it and its builders' params."""

    name: str
    frameworks: tuple[str, ...]
    description: str
    params: Mapping[str, Param] = field(default_factory=dict, hash=False)
    #: model properties explainers may require (``xaibench.registry.MODEL_PROPERTIES``) -> the
    #: builder params under which the built model has it ({}: always)
    properties: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)

    def has(self, prop: str, params: Mapping[str, Any]) -> bool:
        """Whether the model built with ``params`` has the property ``prop``."""
        required = self.properties.get(prop)
        return required is not None and all(
            params.get(key, self.params[key].default) == value for key, value in required.items())


FMNIST_CNN = Architecture(
    "fmnist_cnn", ("torch", "keras", "flax"),
    "conv 32 -> ReLU -> conv 16 -> ReLU (3x3, SAME) -> flatten (head='flatten') or global "
    "average pooling (head='gap', CAM-ready) -> dense n_classes (logits)",
    {"conv1": Param(int, 32), "conv2": Param(int, 16), "head": Param(str, "flatten")},
    {"global_pooling": {"head": "gap"}})
#: the heads of fmnist_cnn: its feature map flattened, or global average pooling (CAM-ready)
FMNIST_CNN_HEADS = ("flatten", "gap")


def check_fmnist_cnn_head(head: str) -> None:
    """Raise ConfigError unless ``head`` is one of :data:`FMNIST_CNN_HEADS`."""
    if head not in FMNIST_CNN_HEADS:
        raise ConfigError(f"fmnist_cnn head must be one of {', '.join(FMNIST_CNN_HEADS)}; "
                          f"got {head!r}")


MLP = Architecture("mlp", ("torch", "keras", "flax"),
                   "flatten -> dense 128 -> ReLU -> dense n_classes (logits)",
                   {"hidden": Param(int, 128)})
VGG16_TRANSFER = Architecture(
    "vgg16_transfer", ("keras",),
    "frozen keras.applications.VGG16 features + global pooling + dense softmax head",
    {"weights": Param(str, "imagenet"), "input_size": Param(int, 32), "head": Param(str, "gap"),
     "hidden": Param(int, 0), "dropout": Param(float, 0.0)})
