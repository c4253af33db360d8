"""The zoo architectures in Keras 3 (see :mod:`backends.zoo.architectures`).

Models are functional, channels-last, with fixed layer names that match the torch zoo
(``conv1``, ``relu1``, ... ``dense``), so weights transfer by name and ``layer=`` explanations
can name a layer. Every activation is its own layer or a supported ``activation=`` (shap's
TF DeepExplainer handles ReLU and softmax, see :func:`backends.keras_backend.check_deep_supported`).
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
from keras import layers

from backends.zoo.architectures import (check_fmnist_cnn_head, check_tabular_mlp,
                                        cifar_convnet_widths)
from xaibench.backend import ImageSpec
from xaibench.errors import ConfigError

#: the ImageNet weights of VGG16 without its classifier, as Keras caches them
VGG16_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"


def fmnist_cnn(spec: ImageSpec, *, conv1: int = 32, conv2: int = 16,
               head: str = "flatten") -> keras.Model:
    """conv ``conv1`` -> ReLU -> conv ``conv2`` -> ReLU (3x3, SAME) -> flatten (``head=
    "flatten"``) or global average pooling (``"gap"``) -> dense (logits)."""
    check_fmnist_cnn_head(head)
    inputs = keras.Input(spec.shape, name="image")
    x = layers.Conv2D(conv1, 3, padding="same", name="conv1")(inputs)
    x = layers.ReLU(name="relu1")(x)
    x = layers.Conv2D(conv2, 3, padding="same", name="conv2")(x)
    x = layers.ReLU(name="relu2")(x)
    x = (layers.GlobalAveragePooling2D(name="pool") if head == "gap"
         else layers.Flatten(name="flatten"))(x)
    return keras.Model(inputs, layers.Dense(spec.n_classes, name="dense")(x), name="fmnist_cnn")


def mlp(spec: ImageSpec, *, hidden: int = 128) -> keras.Model:
    """flatten (H, W, C order) -> dense ``hidden`` -> ReLU -> dense n_classes (logits)."""
    inputs = keras.Input(spec.shape, name="image")
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.ReLU(name="relu")(layers.Dense(hidden, name="dense1")(x))
    return keras.Model(inputs, layers.Dense(spec.n_classes, name="dense2")(x), name="mlp")


def tabular_mlp(spec: ImageSpec, *, width: int = 10, depth: int = 5) -> keras.Model:
    """flatten -> ``depth`` x (dense ``width`` -> ReLU) -> dense n_outputs (``dense1`` ...,
    ``relu1`` ..., ``head``)."""
    check_tabular_mlp(width, depth)
    inputs = keras.Input(spec.shape, name="row")
    x = layers.Flatten(name="flatten")(inputs)
    for i in range(1, depth + 1):
        x = layers.ReLU(name=f"relu{i}")(layers.Dense(width, name=f"dense{i}")(x))
    return keras.Model(inputs, layers.Dense(spec.n_classes, name="head")(x), name="tabular_mlp")


def cifar_convnet(spec: ImageSpec, *, width: int = 8) -> keras.Model:
    """The CIFAR-10 tutorial ConvNet (see the torch zoo): six blocks conv 3x3 -> ReLU ->
    (max-pool 2 after every second) -> BatchNorm (epsilon and momentum as torch's defaults),
    conv 1x1 to the classes, average pool 3, flatten (logits)."""
    inputs = keras.Input(spec.shape, name="image")
    x = inputs
    for i, filters in enumerate(cifar_convnet_widths(spec.shape, width), start=1):
        x = layers.Conv2D(filters, 3, padding="same", kernel_initializer="glorot_uniform",
                          name=f"conv{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        if i % 2 == 0:
            x = layers.MaxPooling2D(2, name=f"pool{i // 2}")(x)
        x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"bn{i}")(x)
    x = layers.Conv2D(spec.n_classes, 1, kernel_initializer="glorot_uniform", name="conv7")(x)
    x = layers.AveragePooling2D(3, name="avgpool")(x)
    return keras.Model(inputs, layers.Flatten(name="flatten")(x), name="cifar_convnet")


def vgg16_weights_path(weights: str | Path) -> str | None:
    """The VGG16 (no top) weights file for ``weights`` = "imagenet" | "none" | a file path.

    Nothing is downloaded: "imagenet" must already be in the Keras cache. Raises ConfigError
    naming every place looked in.
    """
    if str(weights) == "none":
        return None
    if str(weights) == "imagenet":
        keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
        candidates = [keras_home / "models" / VGG16_NOTOP_FILE,
                      Path("/tmp/.keras/models") / VGG16_NOTOP_FILE]
    else:
        candidates = [Path(weights).expanduser()]
    for path in candidates:
        if path.is_file():
            return str(path)
    raise ConfigError(
        f"VGG16 weights {str(weights)!r} not found (looked in: "
        f"{', '.join(str(p) for p in candidates)}); nothing is downloaded -- put "
        f"{VGG16_NOTOP_FILE} there, pass weights='<path to it>', or use weights='none' "
        f"for random frozen features")


def vgg16_transfer(spec: ImageSpec, *, weights: str | Path = "imagenet", input_size: int = 32,
                   head: str = "gap", hidden: int = 0, dropout: float = 0.0) -> keras.Model:
    """Frozen ``keras.applications.VGG16`` features (nested as layer "vgg16") + a new head.

    Grey images are repeated to three channels; images are resized to ``input_size`` (>= 32),
    scaled from the spec's value range to 0-255 and preprocessed as
    ``keras.applications.vgg16.preprocess_input`` does (RGB -> BGR, ImageNet mean subtracted).
    The head is global average pooling (``head="gap"``) or flatten (``"flatten"``), optional
    dropout and a hidden ReLU dense layer, and a dense softmax layer.
    """
    height, width, channels = spec.shape
    if channels not in (1, 3):
        raise ConfigError(f"vgg16_transfer needs 1 or 3 input channels, got {channels}")
    if input_size < 32:
        raise ConfigError(f"vgg16_transfer input_size must be >= 32 (VGG16's minimum), "
                          f"got {input_size}")
    if head not in ("gap", "flatten"):
        raise ConfigError(f"vgg16_transfer head must be 'gap' or 'flatten', got {head!r}")
    base = keras.applications.VGG16(include_top=False, weights=vgg16_weights_path(weights),
                                    input_shape=(input_size, input_size, 3))
    base.trainable = False

    inputs = keras.Input(spec.shape, name="image")
    x = inputs
    if channels == 1:
        x = layers.Concatenate(name="grey_to_rgb")([x, x, x])
    if (height, width) != (input_size, input_size):
        x = layers.Resizing(input_size, input_size, interpolation="bilinear", name="resize")(x)
    low, high = spec.value_range
    x = layers.Rescaling(255.0 / (high - low), offset=-255.0 * low / (high - low),
                         name="to_0_255")(x)
    x = keras.applications.vgg16.preprocess_input(x)
    x = base(x, training=False)
    x = (layers.GlobalAveragePooling2D(name="pool") if head == "gap"
         else layers.Flatten(name="flatten"))(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    if hidden:
        x = layers.Dense(hidden, activation="relu", name="hidden")(x)
    outputs = layers.Dense(spec.n_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="vgg16_transfer")


#: the architectures this module builds, by zoo name
BUILDERS = {"fmnist_cnn": fmnist_cnn, "mlp": mlp, "vgg16_transfer": vgg16_transfer,
            "cifar_convnet": cifar_convnet, "tabular_mlp": tabular_mlp}
