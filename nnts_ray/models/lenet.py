"""LeNet-5-style network whose FX graph has the paper's probe points (the paper's twelve):
input, C0, R0, P0, C1, R1, P1, C2, R2, M3, R3, O — input, conv, ReLU, max-pool, …, matmul, logits."""

from __future__ import annotations

import torch
from torch import nn


class LeNet5(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.C0 = nn.Conv2d(in_channels, 6, 5)  # 32 -> 28
        self.R0 = nn.ReLU()
        self.P0 = nn.MaxPool2d(2)  # 28 -> 14
        self.C1 = nn.Conv2d(6, 16, 5)  # 14 -> 10
        self.R1 = nn.ReLU()
        self.P1 = nn.MaxPool2d(2)  # 10 -> 5
        self.C2 = nn.Conv2d(16, 120, 5)  # 5 -> 1
        self.R2 = nn.ReLU()
        self.M3 = nn.Linear(120, 84)
        self.R3 = nn.ReLU()
        self.O = nn.Linear(84, num_classes)

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002  (names the probe point "input")
        x = self.P0(self.R0(self.C0(input)))
        x = self.P1(self.R1(self.C1(x)))
        x = torch.flatten(self.R2(self.C2(x)), 1)
        return self.O(self.R3(self.M3(x)))
