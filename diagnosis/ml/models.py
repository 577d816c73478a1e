"""Image classifiers built by name: a small fast CNN and a CIFAR-style ResNet-18.

Each model exposes `cam_layer`, the module whose output Grad-CAM explains: the last
convolutional feature map, before global pooling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Three conv blocks (w, 2w, 4w channels; two 3x3 conv + BN + ReLU each), GAP, dropout, linear.

    Only the first two blocks pool, so a 28x28 input keeps a 7x7 map for Grad-CAM.
    """

    def __init__(
        self, in_channels: int, num_classes: int, width: int = 32, dropout: float = 0.3
    ) -> None:
        super().__init__()
        widths = (width, 2 * width, 4 * width)
        self.block1 = _conv_block(in_channels, widths[0], pool=True)
        self.block2 = _conv_block(widths[0], widths[1], pool=True)
        self.block3 = _conv_block(widths[1], widths[2], pool=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(widths[2], num_classes)

    @property
    def cam_layer(self) -> nn.Module:
        """The last conv block, whose activations Grad-CAM weights."""
        return self.block3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits (N, num_classes) for a normalised batch (N, C, H, W)."""
        x = self.block3(self.block2(self.block1(x)))
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with a projection shortcut when the shape changes."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return relu(residual(x) + shortcut(x))."""
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR-style ResNet-18: 3x3 stem without max-pool, stages [2, 2, 2, 2] of w..8w channels."""

    def __init__(
        self, in_channels: int, num_classes: int, width: int = 64, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        stages: list[nn.Module] = []
        in_planes = width
        for i, stride in enumerate((1, 2, 2, 2)):
            planes = width * 2**i
            stages.append(
                nn.Sequential(BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1))
            )
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_planes, num_classes)

    @property
    def cam_layer(self) -> nn.Module:
        """The last residual stage."""
        return self.layer4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits (N, num_classes) for a normalised batch (N, C, H, W)."""
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "small_cnn": SmallCNN,
    "resnet18": ResNet18,
}


def build_model(
    arch: str, *, in_channels: int, num_classes: int, width: int | None = None, dropout: float = 0.0
) -> nn.Module:
    """Build a freshly initialised model by architecture name; raises ValueError if unknown."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {sorted(ARCHITECTURES)}")
    if in_channels < 1 or num_classes < 2:
        raise ValueError("in_channels must be >= 1 and num_classes >= 2")
    kwargs: dict[str, Any] = {"dropout": dropout}
    if width is not None:
        kwargs["width"] = width
    return ARCHITECTURES[arch](in_channels, num_classes, **kwargs)


def _conv_block(cin: int, cout: int, *, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)
