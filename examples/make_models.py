"""Train the three example user models on a Fashion-MNIST subset and save each in its
framework's own format, as a user would:

- ``net.pt``        PyTorch state_dict of ``torch_net:Net`` (NCHW input in [0, 1]),
- ``model.keras``   a Keras model (NHWC input in [0, 255]),
- ``cnn.msgpack``   Flax variables of ``flax_cnn:CNN`` (``flax.serialization``; NHWC in [-1, 1]).

Run from the repository root: ``python examples/make_models.py`` (about a minute on two CPU
cores); ``experiments/user_model.toml`` explains the three models.
"""

from pathlib import Path

import numpy as np

from xaibench.data import fashion_mnist

HERE = Path(__file__).resolve().parent
N_TRAIN, EPOCHS, BATCH, LR, SEED = 10000, 2, 64, 1e-3, 0


def train_torch(x: np.ndarray, y: np.ndarray) -> None:
    import torch

    from torch_net import Net

    torch.manual_seed(SEED)
    net = Net()
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    xt, yt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y).long()
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(xt)).split(BATCH):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[batch]), yt[batch]).backward()
            optimizer.step()
    torch.save(net.state_dict(), HERE / "net.pt")


def train_keras(x: np.ndarray, y: np.ndarray) -> None:
    import keras

    keras.utils.set_random_seed(SEED)
    model = keras.Sequential([
        keras.Input(x.shape[1:]),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ], name="fashion_cnn")
    model.compile(keras.optimizers.Adam(LR),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x * 255.0, y, batch_size=BATCH, epochs=EPOCHS, verbose=0)  # 8-bit pixel values
    model.save(HERE / "model.keras")


def train_flax(x: np.ndarray, y: np.ndarray) -> None:
    import flax.serialization
    import jax
    import optax

    from flax_cnn import CNN

    model, optimizer = CNN(), optax.adam(LR)
    x = x * 2.0 - 1.0  # the model takes [-1, 1]
    params = model.init(jax.random.key(SEED), x[:1])["params"]
    state = optimizer.init(params)

    @jax.jit
    def step(params, state, xb, yb):
        def loss(p):
            logits = model.apply({"params": p}, xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        grads = jax.grad(loss)(params)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    rng = np.random.default_rng(SEED)
    for _ in range(EPOCHS):
        order = rng.permutation(len(x))
        for start in range(0, len(x) - BATCH + 1, BATCH):
            batch = order[start:start + BATCH]
            params, state = step(params, state, x[batch], y[batch].astype(np.int32))
    (HERE / "cnn.msgpack").write_bytes(flax.serialization.to_bytes({"params": params}))


def main() -> None:
    import sys

    sys.path.insert(0, str(HERE))
    data = fashion_mnist.load(n_train=N_TRAIN, n_test=1)
    for train in (train_torch, train_keras, train_flax):
        train(data.x_train, data.y_train)
        print(f"{train.__name__}: done")


if __name__ == "__main__":
    main()
