"""An example user model in Flax linen: a small CNN taking NHWC images in [-1, 1]."""

import flax.linen as nn


class CNN(nn.Module):
    """conv 3x3 -> ReLU -> average-pool 2 -> conv 3x3 -> ReLU -> average-pool 2 -> dense."""

    n_classes: int = 10
    channels: int = 8

    @nn.compact
    def __call__(self, x):
        x = nn.avg_pool(nn.relu(nn.Conv(self.channels, (3, 3), name="conv1")(x)), (2, 2), (2, 2))
        x = nn.avg_pool(nn.relu(nn.Conv(2 * self.channels, (3, 3), name="conv2")(x)), (2, 2),
                        (2, 2))
        return nn.Dense(self.n_classes, name="dense")(x.reshape((x.shape[0], -1)))
