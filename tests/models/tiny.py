"""Tiny modules for probe and zoo tests (importable by path for model.arch=target)."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    """conv → relu → pool → linear; takes in_channels / num_classes like the built-ins."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, hidden: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(hidden * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.relu(self.conv(x))), 1))


def not_a_module(**kwargs):
    """Unannotated: refused before it is ever called."""
    raise AssertionError("a target not known to build an nn.Module must never be called")


def lies_about_module(**kwargs) -> nn.Module:
    """Annotated as building a module but returns a dict: refused after the call."""
    return {"kwargs": kwargs}


class WithTuple(nn.Module):
    """A sub-module returning a tuple, and an op returning a tuple, plus a module called twice."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(4, 3, batch_first=True)
        self.act = nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (b, 1, 4, 4) -> a sequence of 4 rows
        seq, _ = self.rnn(x[:, 0])
        values, _ = torch.max(self.act(seq), dim=1)
        return self.act(values)


class Branchy(nn.Module):
    """Data-dependent control flow: does not trace with torch.fx."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            x = x * 2
        return self.lin(x.flatten(1))
