"""A small ResNet for 32×32 inputs: stem, three one-block stages, global pool, logits.

Small on purpose (≈ 80k parameters, ≤ 4,096 values per probe point at 32×32): every atomic operation
can be probed on CPU, and it trains on the spot in seconds like LeNet-5. Every operation has its own
module, so FX node names read as the architecture: stem.conv, stage2.add, stage2.relu2, pool, fc.
"""

from __future__ import annotations

import torch
from torch import nn


class Stem(nn.Module):
    def __init__(self, in_channels: int, width: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, stride=2, padding=1, bias=False)  # 32 -> 16
        self.bn = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    """conv-bn-relu-conv-bn, plus the (projected when the shape changes) input, then relu."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = (nn.Identity() if stride == 1 and c_in == c_out else
                         nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)))
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + self.shortcut(x))


class SmallResNet(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 16):
        super().__init__()
        self.stem = Stem(in_channels, width)  # (w, 16, 16) at 32×32
        self.stage1 = BasicBlock(width, width, 1)  # (w, 16, 16)
        self.stage2 = BasicBlock(width, 2 * width, 2)  # (2w, 8, 8)
        self.stage3 = BasicBlock(2 * width, 4 * width, 2)  # (4w, 4, 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage3(self.stage2(self.stage1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))
