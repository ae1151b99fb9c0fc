"""Architectures beyond the built-in LeNet-5, selected by `model.arch`."""

from __future__ import annotations

from torch import nn

from nnts_ray.config import ConfigError, ModelConfig

ARCHS = ("lenet5",)


def build(cfg: ModelConfig, in_channels: int, num_classes: int) -> nn.Module:
    raise ConfigError(f"model.arch={cfg.arch!r} is not allowed; choose one of: {', '.join(ARCHS)}")
