"""Naming of repeated module calls, shared by the probe listing and the capture hooks: a module
called several times per forward gives `name`, `name_1`, `name_2`, … one per call."""

from __future__ import annotations

import re

from torch import nn

from nnts_ray.config import ConfigError


class CallNamer:
    """Counts the calls of each module during one forward pass and names each call."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def reset(self) -> None:
        self.calls = {}

    def next(self, module: str) -> tuple[str, int]:
        """(label, call index) of this call of `module`."""
        call = self.calls.get(module, 0)
        self.calls[module] = call + 1
        return (module if call == 0 else f"{module}_{call}"), call


def split_call(name: str, modules: dict[str, nn.Module]) -> tuple[str, int]:
    """`layer1.0.relu_1` → ('layer1.0.relu', 1): the module and which of its calls per forward."""
    if name in modules:
        return name, 0
    m = re.fullmatch(r"(.+)_(\d+)", name)
    if m and m.group(1) in modules:
        return m.group(1), int(m.group(2))
    raise ConfigError(f"probe point {name!r} is not a module of this model (probe_mode=modules)")
