"""Capturing the selected probe points' outputs in one forward pass.

`atomic` mode rewrites the fx graph to return the selected nodes; `modules` mode records module
outputs with forward hooks. Every recorded output is cloned when it is produced, so a later in-place
operation (ReLU(inplace=True) in torchvision's ResNets) cannot overwrite what was recorded for an
earlier probe point.
"""

from __future__ import annotations

import torch
from torch import fx, nn

from nnts_ray.config import ConfigError
from nnts_ray.probes.calls import CallNamer, split_call
from nnts_ray.probes.graph import atomic_nodes, trace


def snapshot(value: object) -> object:
    """A copy of a tensor output, so that later in-place operations cannot change what was recorded."""
    return value.clone() if torch.is_tensor(value) else value


def atomic_module(model: nn.Module, names: list[str]) -> fx.GraphModule:
    """A GraphModule returning {name: clone of that node's output} for the given probe names."""
    root, graph, qualname = trace(model)
    nodes = atomic_nodes(root, qualname)
    unknown = [n for n in names if n not in nodes]
    if unknown:
        raise ConfigError(f"probe points {unknown} do not exist in this model; valid: {', '.join(nodes)}")
    outputs = {}
    for name in names:
        with graph.inserting_after(nodes[name]):
            outputs[name] = graph.call_function(snapshot, (nodes[name],))
    old = next(n for n in graph.nodes if n.op == "output")
    with graph.inserting_before(old):
        graph.output(outputs)
    graph.erase_node(old)
    return fx.GraphModule(root, graph, type(model).__name__)


def describe(value: object) -> str:
    """What an output that is not one tensor is, for messages."""
    if value is None:
        return "nothing (never called)"
    return "a tuple" if isinstance(value, tuple) else "a dict" if isinstance(value, dict) else f"a {type(value).__name__}"


class Extractor(nn.Module):
    """Returns {probe name: (batch, …) tensor} for the selected probe points."""

    def __init__(self, model: nn.Module, names: list[str], mode: str):
        super().__init__()
        self.names, self.mode = list(names), mode
        if mode == "atomic":
            self.inner = atomic_module(model, self.names)
            return
        self.inner = model.eval()
        modules = dict(model.named_modules())
        self._want = {split_call(n, modules): n for n in self.names if n != "input"}
        self._namer = CallNamer()
        self._out: dict[str, object] = {}
        for mod_name in {m for m, _ in self._want}:
            modules[mod_name].register_forward_hook(self._hook(mod_name))

    def _hook(self, mod_name: str):
        def fn(_m, _inp, out):
            _, call = self._namer.next(mod_name)
            name = self._want.get((mod_name, call))
            if name is not None:
                self._out[name] = snapshot(out)

        return fn

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.mode == "atomic":
            out = self.inner(x)
        else:
            self._namer.reset()
            self._out = {"input": x.clone()} if "input" in self.names else {}
            self.inner(x)
            out = self._out
        for n in self.names:
            if not torch.is_tensor(out.get(n)):
                raise ConfigError(f"probe point {n!r} returns {describe(out.get(n))}, not one tensor per sample; "
                                  f"leave it out of model.probes")
        return {n: out[n] for n in self.names}
