"""Probe points: which intermediate outputs of a model are recorded, in forward order.

`atomic` mode probes every torch.fx graph node (so functional calls such as F.relu count, like the
paper's atomic operations), skipping nodes that only reshape (their neighbours equal their input's).
`modules` mode probes leaf-module outputs through forward hooks, for models that do not trace.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nnts_ray.config import ConfigError, ModelConfig

# Nodes whose output is a view of their input: same neighbours, so not separate probe points.
_RESHAPES = {"flatten", "view", "reshape", "squeeze", "unsqueeze", "contiguous", "permute", "transpose",
             "getitem", "size", "dropout", "identity"}


@dataclass(frozen=True)
class ProbePoint:
    layer: str  # the graph node name (atomic) or module path (modules)
    position: int  # order in the chain, 0 = input
    shape: tuple[int, ...]  # output shape per sample
    dim: int  # dimension after reduction


def _is_reshape(node) -> bool:
    target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    return node.op in ("call_function", "call_method") and target.lower() in _RESHAPES


def candidate_nodes(model: nn.Module, mode: str) -> list[str]:
    """All probe-able names in forward order (input first)."""
    if mode == "atomic":
        from torch.fx import symbolic_trace

        try:
            graph = symbolic_trace(model).graph
        except Exception as e:  # data-dependent control flow and friends
            raise ConfigError(
                f"model does not trace with torch.fx ({type(e).__name__}: {e}); use model.probe_mode=modules"
            ) from e
        from torchvision.models.feature_extraction import get_graph_node_names

        names = get_graph_node_names(model)[1]  # eval-mode graph, the names create_feature_extractor takes
        skip = {n.name for n in graph.nodes if _is_reshape(n)}
        return [n for n in names if n not in skip and not n.startswith("output")]
    leaves = [name for name, m in model.named_modules() if name and not list(m.children())]
    return ["input"] + leaves


def select(names: list[str], patterns: list[str]) -> list[str]:
    """Names matching any pattern (exact or glob), kept in forward order; unknown names are errors."""
    chosen = set()
    for pat in patterns:
        hits = [n for n in names if fnmatch.fnmatchcase(n, pat)]
        if not hits:
            raise ConfigError(f"probe point {pat!r} does not exist; valid probe points: {', '.join(names)}")
        chosen.update(hits)
    return [n for n in names if n in chosen]


class Extractor(nn.Module):
    """Returns {probe name: (batch, …) tensor} for the selected probe points."""

    def __init__(self, model: nn.Module, names: list[str], mode: str):
        super().__init__()
        self.names, self.mode = names, mode
        if mode == "atomic":
            from torchvision.models.feature_extraction import create_feature_extractor

            self.inner = create_feature_extractor(model.eval(), return_nodes=list(names))
        else:
            self.inner = model.eval()
            self._out: dict[str, torch.Tensor] = {}
            mods = dict(model.named_modules())
            seen: set[str] = set()
            for n in names:
                if n != "input":
                    mods[n].register_forward_hook(self._hook(n, seen))

    def _hook(self, name: str, seen: set[str]):
        def fn(_m, _inp, out):
            if isinstance(out, (tuple, list, dict)):
                raise ConfigError(f"probe point {name!r} returns a {type(out).__name__}; select tensor outputs only")
            if name in self._out:
                raise ConfigError(f"module {name!r} is called several times per forward; use probe_mode=atomic")
            self._out[name] = out

        return fn

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.mode == "atomic":
            out = self.inner(x)
        else:
            self._out = {}
            self.inner(x)
            out = {"input": x, **self._out} if "input" in self.names else dict(self._out)
        for n in self.names:
            if not torch.is_tensor(out.get(n)):
                raise ConfigError(f"probe point {n!r} does not return a tensor; leave it out of model.probes")
        return {n: out[n] for n in self.names}


class Reducer:
    """Turns a probe point's (batch, …) output into (batch, d) float32 rows (recorded in the manifest).

    flatten: the paper. avgpool: mean over spatial positions of (C, H, W) outputs — neighbours by
    channel content, blind to where it occurs. random_projection: a seeded Gaussian map to
    projection_dim (Johnson–Lindenstrauss: distances preserved approximately, so NNTS is approximate).
    """

    def __init__(self, cfg: ModelConfig, layer: str, shape: tuple[int, ...], seed: int):
        self.kind = cfg.reduction
        flat = int(np.prod(shape))
        self.matrix = None
        if self.kind == "avgpool":
            self.dim = shape[0] if len(shape) >= 2 else flat
        elif self.kind == "random_projection" and flat > cfg.projection_dim:
            g = torch.Generator().manual_seed(seed + sum(map(ord, layer)))
            self.matrix = torch.randn(flat, cfg.projection_dim, generator=g) / np.sqrt(cfg.projection_dim)
            self.dim = cfg.projection_dim
        else:
            self.dim = flat

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        t = t.float()
        if self.kind == "avgpool" and t.dim() >= 3:
            return t.flatten(2).mean(2)
        t = t.flatten(1)
        if self.matrix is not None:
            self.matrix = self.matrix.to(t.device)
            return t @ self.matrix
        return t


def probe_points(model: nn.Module, cfg: ModelConfig, example: torch.Tensor, seed: int) -> list[ProbePoint]:
    """The selected probe points with their output shapes, from one forward pass on `example`."""
    names = select(candidate_nodes(model, cfg.probe_mode), cfg.probes)
    with torch.inference_mode():
        outs = Extractor(model, names, cfg.probe_mode)(example[:2])
    points = []
    for pos, n in enumerate(names):
        shape = tuple(outs[n].shape[1:])
        points.append(ProbePoint(n, pos, shape, Reducer(cfg, n, shape, seed).dim))
    return points
