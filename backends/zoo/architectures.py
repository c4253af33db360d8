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
TABULAR_MLP = Architecture(
    "tabular_mlp", ("torch", "keras", "flax"),
    "flatten -> depth x (dense width -> ReLU) -> dense n_outputs: the course's Keras MLP for "
    "tabular rows (5 x Dense(10, relu) -> Dense(1))",
    {"width": Param(int, 10), "depth": Param(int, 5)})


def check_tabular_mlp(width: int, depth: int) -> None:
    """Raise ConfigError unless ``width`` and ``depth`` are positive integers."""
    for name, value in (("width", width), ("depth", depth)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"tabular_mlp {name} must be a positive integer, got {value!r}")


VGG16_TRANSFER = Architecture(
    "vgg16_transfer", ("keras",),
    "frozen keras.applications.VGG16 features + global pooling + dense softmax head",
    {"weights": Param(str, "imagenet"), "input_size": Param(int, 32), "head": Param(str, "gap"),
     "hidden": Param(int, 0), "dropout": Param(float, 0.0)})
CIFAR_CONVNET = Architecture(
    "cifar_convnet", ("torch", "keras", "flax"),
    "6 x (conv 3x3 -> ReLU -> [maxpool 2 after every second] -> BatchNorm), widths w, w, 4w, 4w, "
    "16w, 16w; conv 1x1 -> n_classes, avgpool 3, flatten (logits): the CIFAR-10 tutorial ConvNet",
    {"width": Param(int, 8)})

#: the tutorial's own ConvNet: torch only, because only shap's torch DeepExplainer is blind to a
#: functional ReLU (Keras layers and our JAX DeepLIFT see every activation); a separate name,
#: not a param, so other frameworks refuse it at validation and reports label it apart
CIFAR_CONVNET_FUNCTIONAL = Architecture(
    "cifar_convnet_functional", ("torch",),
    "cifar_convnet with the tutorial's functional F.relu instead of nn.ReLU modules: the same "
    "function and weights, but shap's torch DeepExplainer attributions do not add up (#3938)",
    {"width": Param(int, 8)})


def cifar_convnet_widths(shape: tuple[int, int, int], width: int) -> tuple[int, ...]:
    """The six convolution widths of ``cifar_convnet`` for images of ``shape`` (H, W, C).

    Three 2x2 max-pools and a 3x3 average pool must leave a 1x1 map (so the flattened output
    is the n_classes logits): H and W must lie in 24..47 (32 for CIFAR-10); else ConfigError.
    """
    height, wide, _ = shape
    if not (24 <= height <= 47 and 24 <= wide <= 47):
        raise ConfigError(f"cifar_convnet needs images of 24..47 pixels per side (its pools "
                          f"reduce 32x32 to 1x1), got {height}x{wide}; resize the images "
                          f"(image_folder: size = 32) or use another architecture")
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ConfigError(f"cifar_convnet width must be a positive integer, got {width!r}")
    return (width, width, 4 * width, 4 * width, 16 * width, 16 * width)
RANDOM_FOREST = Architecture(
    "random_forest", ("sklearn",),
    "scikit-learn random forest: RandomForestClassifier (class probabilities) for "
    "classification, RandomForestRegressor (one output) for regression",
    {"n_estimators": Param(int, 100), "max_depth": Param(int | None, None)})
