"""Tiny user models on the digits (8x8x1, 10 classes), trained in a second and saved in each
framework's own format into a test's directory, with the source file of their classes.

Each model class takes ``nhwc``/``nchw`` and ``scale`` parameters that change the input it
takes but not its weights, so one weights file read through different declared layouts and
value ranges must give the same scores (the oracle of the layout and value-range adaptation).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xaibench.data import digits
from xaibench.data.base import Dataset

TORCH_SOURCE = '''
from torch import nn


class Net(nn.Module):
    def __init__(self, n_classes=10, nhwc=False, scale=1.0):
        super().__init__()
        self.nhwc, self.scale = nhwc, scale
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()
        self.dense = nn.Linear(4 * 8 * 8, n_classes)

    def forward(self, x):
        if self.nhwc:
            x = x.permute(0, 3, 1, 2)
        return self.dense(self.flatten(self.relu(self.conv(x / self.scale))))
'''

FLAX_SOURCE = '''
import flax.linen as nn
import jax.numpy as jnp


class CNN(nn.Module):
    n_classes: int = 10
    nchw: bool = False
    scale: float = 1.0

    @nn.compact
    def __call__(self, x):
        if self.nchw:
            x = jnp.transpose(x, (0, 2, 3, 1))
        x = nn.relu(nn.Conv(4, (3, 3), name="conv")(x / self.scale))
        return nn.Dense(self.n_classes, name="dense")(x.reshape((x.shape[0], -1)))
'''

#: the grid every framework's test runs (the models are appended)
GRID_TOML = """
name = "user"
seed = 0
metrics = ["additivity", "deletion_auc", "mprt"]

[dataset]
name = "digits"
n_train = 100
n_background = 5

[images]
first = 2

[[explainers]]
name = "deep"

[[explainers]]
name = "gradient"
params = { nsamples = 16 }

[[explainers]]
name = "partition"
maskers = ["blur(3,3)"]
params = { max_evals = 40 }

[[explainers]]
name = "random"
"""


def data() -> Dataset:
    return digits.load()


def write_torch(folder: Path, steps: int = 150) -> Path:
    """Train ``Net`` (NCHW, [0, 1]) briefly; write ``tiny_torch_net.py`` and ``net.pt``."""
    import torch

    (folder / "tiny_torch_net.py").write_text(TORCH_SOURCE)
    namespace: dict = {}
    exec(TORCH_SOURCE, namespace)
    torch.manual_seed(0)
    net = namespace["Net"]()
    dataset = data()
    x = torch.from_numpy(dataset.x_train).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(dataset.y_train)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        batch = torch.randint(len(x), (64,), generator=generator)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(x[batch]), y[batch]).backward()
        optimizer.step()
    torch.save(net.state_dict(), folder / "net.pt")
    return folder / "net.pt"


def write_flax(folder: Path, steps: int = 150) -> Path:
    """Train ``CNN`` (NHWC, [0, 1]) briefly; write ``tiny_flax_cnn.py`` and ``cnn.msgpack``."""
    import flax.serialization
    import jax
    import optax

    (folder / "tiny_flax_cnn.py").write_text(FLAX_SOURCE)
    namespace: dict = {}
    exec(FLAX_SOURCE, namespace)
    model, optimizer = namespace["CNN"](), optax.adam(1e-2)
    dataset = data()
    params = model.init(jax.random.key(0), dataset.x_train[:1])["params"]
    state = optimizer.init(params)

    @jax.jit
    def step(params, state, xb, yb):
        def loss(p):
            logits = model.apply({"params": p}, xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        updates, state = optimizer.update(jax.grad(loss)(params), state, params)
        return optax.apply_updates(params, updates), state

    rng = np.random.default_rng(0)
    for _ in range(steps):
        batch = rng.integers(len(dataset.x_train), size=64)
        params, state = step(params, state, dataset.x_train[batch],
                             dataset.y_train[batch].astype(np.int32))
    (folder / "cnn.msgpack").write_bytes(flax.serialization.to_bytes({"params": params}))
    return folder / "cnn.msgpack"


def write_keras(folder: Path, epochs: int = 3) -> tuple[Path, Path]:
    """Train a small Keras CNN (NHWC, [0, 1]) briefly; write it as ``nhwc.keras`` and, behind a
    Permute layer taking NCHW input scaled to [0, 255], as ``nchw255.keras`` (same weights)."""
    import keras

    keras.utils.set_random_seed(0)
    layers = [keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv"),
              keras.layers.Flatten(name="flatten"), keras.layers.Dense(10, name="dense")]
    nhwc = keras.Sequential([keras.Input((8, 8, 1)), *layers], name="tiny")
    nhwc.compile(keras.optimizers.Adam(1e-2),
                 keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    dataset = data()
    nhwc.fit(dataset.x_train, dataset.y_train, batch_size=64, epochs=epochs, verbose=0)
    inputs = keras.Input((1, 8, 8))
    x = keras.layers.Rescaling(1 / 255)(keras.layers.Permute((2, 3, 1))(inputs))
    for layer in layers:
        x = layer(x)
    nchw255 = keras.Model(inputs, x, name="tiny_nchw")
    nhwc.save(folder / "nhwc.keras")
    nchw255.save(folder / "nchw255.keras")
    return folder / "nhwc.keras", folder / "nchw255.keras"


def accuracy(scores: np.ndarray) -> float:
    """Accuracy of ``scores`` on the digits' test split."""
    return float(np.mean(scores.argmax(axis=1) == data().y_test))
