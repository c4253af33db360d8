"""The zoo architectures in PyTorch (see :mod:`backends.zoo.architectures`).

Conventions that keep these models explainable and their weights portable:

- every activation is its own ``nn.ReLU`` instance, never reused and never ``inplace`` (shap's
  DeepExplainer stores per-module state in forward hooks and would silently give wrong values);
- no functional nonlinearities (``F.relu``) and no in-place arithmetic in ``forward`` -- except in
  ``cifar_convnet_functional``, the tutorial's functional-ReLU ConvNet, kept to show what it does
  to DeepExplainer;
- the input is NCHW (torch's layout; the backend converts from NHWC), but before flattening the
  feature map is permuted to channels-last, so the rows of every dense layer that follows a
  flatten are in H, W, C order -- the order Keras and Flax use. Weights then transfer between
  frameworks by transposing kernels only.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from backends.zoo.architectures import (check_fmnist_cnn_head, check_tabular_mlp,
                                        cifar_convnet_widths)
from xaibench.backend import ImageSpec


def _flatten_channels_last(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, H*W*C) in H, W, C order (as Keras/Flax flatten NHWC)."""
    return torch.flatten(x.permute(0, 2, 3, 1), 1)


class FmnistCNN(nn.Module):
    """conv 32 -> ReLU -> conv 16 -> ReLU (3x3, SAME, stride 1) -> flatten or global average
    pooling (``head``) -> dense (logits)."""

    def __init__(self, spec: ImageSpec, conv1: int = 32, conv2: int = 16,
                 head: str = "flatten") -> None:
        super().__init__()
        check_fmnist_cnn_head(head)
        h, w, c = spec.shape
        self.pooled = head == "gap"
        self.conv1 = nn.Conv2d(c, conv1, kernel_size=3, stride=1, padding="same")
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(conv1, conv2, kernel_size=3, stride=1, padding="same")
        self.relu2 = nn.ReLU()
        self.dense = nn.Linear(conv2 if self.pooled else h * w * conv2, spec.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.conv1(x))
        x = self.relu2(self.conv2(x))
        return self.dense(x.mean(dim=(2, 3)) if self.pooled else _flatten_channels_last(x))


class MLP(nn.Module):
    """flatten (H, W, C order) -> dense ``hidden`` -> ReLU -> dense n_classes (logits)."""

    def __init__(self, spec: ImageSpec, hidden: int = 128) -> None:
        super().__init__()
        h, w, c = spec.shape
        self.dense1 = nn.Linear(h * w * c, hidden)
        self.relu = nn.ReLU()
        self.dense2 = nn.Linear(hidden, spec.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense2(self.relu(self.dense1(_flatten_channels_last(x))))


class TabularMLP(nn.Module):
    """flatten -> ``depth`` x (dense ``width`` -> ReLU) -> dense n_outputs; layers ``dense1``
    ... ``dense<depth>`` with ``relu1`` ..., then ``head``."""

    def __init__(self, spec: ImageSpec, width: int = 10, depth: int = 5) -> None:
        super().__init__()
        check_tabular_mlp(width, depth)
        self.depth = depth
        h, w, c = spec.shape
        for i, n_in in enumerate([h * w * c] + [width] * (depth - 1), start=1):
            self.add_module(f"dense{i}", nn.Linear(n_in, width))
            self.add_module(f"relu{i}", nn.ReLU())
        self.head = nn.Linear(width, spec.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _flatten_channels_last(x)
        for i in range(1, self.depth + 1):
            x = getattr(self, f"relu{i}")(getattr(self, f"dense{i}")(x))
        return self.head(x)


class CifarConvNet(nn.Module):
    """The CIFAR-10 tutorial ConvNet: six blocks conv 3x3 -> ReLU -> (max-pool 2 after every
    second) -> BatchNorm, then conv 1x1 to the classes, average pool 3, flatten (logits).

    Every ReLU and pool is its own module (shap's DeepExplainer keeps state per module);
    convolution kernels are Xavier-uniform, biases zero. With ``functional_relu`` the ReLUs are
    ``F.relu`` calls in ``forward`` instead, as in the tutorial: the same function and the same
    parameters (in the same order, so the same seed gives the same weights), but invisible to
    DeepExplainer's module hooks.
    """

    def __init__(self, spec: ImageSpec, width: int = 8, functional_relu: bool = False) -> None:
        super().__init__()
        widths = cifar_convnet_widths(spec.shape, width)
        self.n_blocks = len(widths)
        self.functional_relu = functional_relu
        for i, (c_in, c_out) in enumerate(zip((spec.shape[2], *widths), widths), start=1):
            self.add_module(f"conv{i}", nn.Conv2d(c_in, c_out, kernel_size=3, padding=1))
            if not functional_relu:
                self.add_module(f"relu{i}", nn.ReLU())
            if i % 2 == 0:
                self.add_module(f"pool{i // 2}", nn.MaxPool2d(2))
            self.add_module(f"bn{i}", nn.BatchNorm2d(c_out, eps=1e-5, momentum=0.1))
        self.conv7 = nn.Conv2d(widths[-1], spec.n_classes, kernel_size=1)
        self.avgpool = nn.AvgPool2d(3)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, self.n_blocks + 1):
            x = getattr(self, f"conv{i}")(x)
            x = F.relu(x) if self.functional_relu else getattr(self, f"relu{i}")(x)
            if i % 2 == 0:
                x = getattr(self, f"pool{i // 2}")(x)
            x = getattr(self, f"bn{i}")(x)
        return torch.flatten(self.avgpool(self.conv7(x)), 1)


def cifar_convnet(spec: ImageSpec, *, width: int = 8) -> nn.Module:
    """The CIFAR-10 tutorial ConvNet with convolution widths w, w, 4w, 4w, 16w, 16w."""
    return CifarConvNet(spec, width=width)


def cifar_convnet_functional(spec: ImageSpec, *, width: int = 8) -> nn.Module:
    """:func:`cifar_convnet` with functional ``F.relu`` activations, as the tutorial writes it
    (shap's torch DeepExplainer gives attributions that do not add up: shap issue #3938)."""
    return CifarConvNet(spec, width=width, functional_relu=True)


def fmnist_cnn(spec: ImageSpec, *, conv1: int = 32, conv2: int = 16,
               head: str = "flatten") -> nn.Module:
    """The two-convolution CNN (32 then 16 filters, 3x3 SAME) with a dense head on the
    flattened (``head="flatten"``) or globally average-pooled (``"gap"``) feature map."""
    return FmnistCNN(spec, conv1=conv1, conv2=conv2, head=head)


def mlp(spec: ImageSpec, *, hidden: int = 128) -> nn.Module:
    """One hidden dense layer of ``hidden`` units with ReLU, then a dense logits layer."""
    return MLP(spec, hidden=hidden)


def tabular_mlp(spec: ImageSpec, *, width: int = 10, depth: int = 5) -> nn.Module:
    """``depth`` hidden dense layers of ``width`` units with ReLU, then a dense output layer."""
    return TabularMLP(spec, width=width, depth=depth)


#: the architectures this module builds, by zoo name
BUILDERS = {"fmnist_cnn": fmnist_cnn, "mlp": mlp, "cifar_convnet": cifar_convnet,
            "cifar_convnet_functional": cifar_convnet_functional, "tabular_mlp": tabular_mlp}
