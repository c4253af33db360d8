"""An example user model in PyTorch: a small CNN taking NCHW images in [0, 1].

Every nonlinearity is its own ``nn.Module`` instance, used once and out of place, so shap's
DeepExplainer can explain it (see README, "Your own model").
"""

from torch import nn


class Net(nn.Module):
    """conv 3x3 -> ReLU -> max-pool 2 -> conv 3x3 -> ReLU -> max-pool 2 -> dense (logits)."""

    def __init__(self, n_classes: int = 10, channels: int = 8, size: int = 28) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(),
                                  nn.Linear(2 * channels * (size // 4) ** 2, n_classes))

    def forward(self, x):
        return self.head(self.features(x))
