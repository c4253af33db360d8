"""The zoo architectures in Flax linen (see :mod:`backends.zoo.architectures`).

Layers carry the same names as in the torch and Keras zoos (``conv1``, ``conv2``, ``dense``;
``dense1``, ``dense2``), so weights transfer by name (``Backend.get_weights`` /
``set_weights``). Feature maps are NHWC and flatten in H, W, C order, as in the other two
frameworks.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from backends.zoo.architectures import (check_fmnist_cnn_head, check_tabular_mlp,
                                        cifar_convnet_widths)
from xaibench.backend import ImageSpec


class FmnistCNN(nn.Module):
    """conv -> ReLU -> conv -> ReLU (3x3, SAME, stride 1) -> flatten or global average
    pooling (``pooled``) -> dense (logits)."""

    n_classes: int
    filters: tuple[int, int] = (32, 16)
    pooled: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(nn.Conv(self.filters[0], (3, 3), padding="SAME", name="conv1")(x))
        x = nn.relu(nn.Conv(self.filters[1], (3, 3), padding="SAME", name="conv2")(x))
        x = x.mean(axis=(1, 2)) if self.pooled else x.reshape((x.shape[0], -1))
        return nn.Dense(self.n_classes, name="dense")(x)


class MLP(nn.Module):
    """flatten (H, W, C order) -> dense ``hidden`` -> ReLU -> dense n_classes (logits)."""

    n_classes: int
    hidden: int = 128

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(nn.Dense(self.hidden, name="dense1")(x.reshape((x.shape[0], -1))))
        return nn.Dense(self.n_classes, name="dense2")(x)


class TabularMLP(nn.Module):
    """flatten -> ``depth`` x (dense ``width`` -> ReLU) -> dense n_outputs (``dense1`` ...,
    ``head``)."""

    n_outputs: int
    width: int = 10
    depth: int = 5

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape((x.shape[0], -1))
        for i in range(1, self.depth + 1):
            x = nn.relu(nn.Dense(self.width, name=f"dense{i}")(x))
        return nn.Dense(self.n_outputs, name="head")(x)


_XAVIER = nn.initializers.xavier_uniform()


class CifarConvNet(nn.Module):
    """The CIFAR-10 tutorial ConvNet (see the torch zoo). ``train`` switches BatchNorm to batch
    statistics (:meth:`backends.flax_backend.FlaxBackend.fit` clones the module with it)."""

    n_classes: int
    widths: tuple[int, ...]
    train: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, filters in enumerate(self.widths, start=1):
            x = nn.Conv(filters, (3, 3), padding="SAME", kernel_init=_XAVIER, name=f"conv{i}")(x)
            x = nn.relu(x)
            if i % 2 == 0:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
            x = nn.BatchNorm(use_running_average=not self.train, momentum=0.9, epsilon=1e-5,
                             name=f"bn{i}")(x)
        x = nn.Conv(self.n_classes, (1, 1), kernel_init=_XAVIER, name="conv7")(x)
        x = nn.avg_pool(x, (3, 3), strides=(3, 3))
        return x.reshape((x.shape[0], -1))


def cifar_convnet(spec: ImageSpec, *, width: int = 8) -> nn.Module:
    """The CIFAR-10 tutorial ConvNet with convolution widths w, w, 4w, 4w, 16w, 16w."""
    return CifarConvNet(spec.n_classes, cifar_convnet_widths(spec.shape, width))


def fmnist_cnn(spec: ImageSpec, *, conv1: int = 32, conv2: int = 16,
               head: str = "flatten") -> nn.Module:
    """The two-convolution CNN (32 then 16 filters, 3x3 SAME) with a dense head on the
    flattened (``head="flatten"``) or globally average-pooled (``"gap"``) feature map."""
    check_fmnist_cnn_head(head)
    return FmnistCNN(spec.n_classes, (conv1, conv2), head == "gap")


def mlp(spec: ImageSpec, *, hidden: int = 128) -> nn.Module:
    """One hidden dense layer of ``hidden`` units with ReLU, then a dense logits layer."""
    return MLP(spec.n_classes, hidden)


def tabular_mlp(spec: ImageSpec, *, width: int = 10, depth: int = 5) -> nn.Module:
    """``depth`` hidden dense layers of ``width`` units with ReLU, then a dense output layer."""
    check_tabular_mlp(width, depth)
    return TabularMLP(spec.n_classes, width, depth)


#: the architectures this module builds, by zoo name
BUILDERS = {"fmnist_cnn": fmnist_cnn, "mlp": mlp, "cifar_convnet": cifar_convnet,
            "tabular_mlp": tabular_mlp}
