"""Framework-free descriptions of the zoo architectures.

Each framework module ``backends.zoo.<framework>_models`` defines a builder with the same name;
this catalogue is what configs are validated against without importing any framework.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    """A named architecture and the frameworks that implement it."""

    name: str
    frameworks: tuple[str, ...]
    description: str


FMNIST_CNN = Architecture(
    "fmnist_cnn", ("torch", "keras", "flax"),
    "conv 32 -> ReLU -> conv 16 -> ReLU (3x3, SAME) -> flatten -> dense n_classes (logits)")
MLP = Architecture("mlp", ("torch", "keras", "flax"),
                   "flatten -> dense 128 -> ReLU -> dense n_classes (logits)")
VGG16_TRANSFER = Architecture(
    "vgg16_transfer", ("keras",),
    "frozen keras.applications.VGG16 features + global pooling + dense softmax head")
