"""ShallowCNN1D (MNIST-1D) and VGG7 (HMT): small CNNs with a global-average-pool + linear head."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; the statistics are buffers saved with the weights."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return (x - self.mean.view(shape)) / self.std.view(shape)


class ShallowCNN1D(nn.Module):
    """The course's shallow 1-D CNN for MNIST-1D (input ``(N, 1, 40)``).

    Three ``Conv1d`` + ReLU blocks (the second with stride 2), global average pooling and one linear layer,
    in the spirit of the CNN baseline of Greydanus 2020 (Sec. 3), whose head is made global-average-pool +
    linear so that CAM (Zhou 2016) applies.
    """

    def __init__(self, n_classes: int = 10, channels: int = 64, mean: float = 0.0, std: float = 1.0):
        super().__init__()
        self.config = {"n_classes": n_classes, "channels": channels, "mean": mean, "std": std}
        self.normalize = Normalize([mean], [std])
        self.features = nn.Sequential(
            nn.Conv1d(1, channels, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.Conv1d(channels, channels, kernel_size=5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv1d(channels, channels, kernel_size=5, padding=2),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.classifier = nn.Linear(channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(self.normalize(x))).flatten(1))


class VGG7(nn.Module):
    """The ECE1512 course's VGG-7 for HMT tiles (input ``(N, 3, S, S)`` in [0, 1]).

    conv32-conv32-maxpool-conv64-conv64-maxpool-global average pool-linear8, 3×3 convolutions with same padding
    and ReLU: 66,088 parameters (Simonyan & Zisserman style blocks).
    """

    def __init__(self, n_classes: int = 8, mean: Sequence[float] = (0.5, 0.5, 0.5),
                 std: Sequence[float] = (0.25, 0.25, 0.25)):
        super().__init__()
        self.config = {"n_classes": n_classes, "mean": list(mean), "std": list(std)}
        self.normalize = Normalize(mean, std)
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(self.normalize(x))).flatten(1))
