"""Probe points: which intermediate outputs of a model are recorded, in forward order.

`atomic` mode probes every torch.fx graph node, named as torchvision's feature extraction names them
(`layer1.0.conv1`, `layer1.0.add`; a module called twice gives `relu` and `relu_1`), so functional
calls such as F.relu count, like the paper's atomic operations. The model's input is always called
`input`. `modules` mode probes module outputs through forward hooks, for models that do not trace:
every sub-module (containers included, e.g. `layer1`), ordered by when its forward finishes; a module
called several times gives `name`, `name_1`, … one per call.

Skipped, because their output has the same neighbours as their input: view/reshape operations, and
Identity / Dropout / Flatten modules. Outputs that are not one tensor per sample (tuples, dicts, sizes,
parameters) are listed as not probe-able: glob patterns pass over them; naming one is an error that says
what it returns (a tuple's elements are probe points of their own: its `getitem` nodes in atomic mode).

Every recorded output is cloned when it is produced, so a later in-place operation (ReLU(inplace=True)
in torchvision's ResNets) cannot overwrite what was recorded for an earlier probe point.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import fx, nn

from nnts_ray.config import ConfigError, ModelConfig

# Operations whose output is a view or re-layout of their input (same neighbours) or a no-op in eval.
_VIEW_OPS = {"flatten", "view", "reshape", "squeeze", "unsqueeze", "contiguous", "permute", "transpose",
             "dropout", "identity", "clone", "detach"}
_VIEW_MODULES = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
                 nn.AlphaDropout)


@dataclass(frozen=True)
class ProbePoint:
    layer: str  # the graph node name (atomic) or module path (modules)
    position: int  # order in the chain, 0 = input
    shape: tuple[int, ...]  # output shape per sample
    dim: int  # dimension after reduction


@dataclass(frozen=True)
class Candidate:
    """A probe-able name with its per-sample output shape, or why it cannot be probed."""

    name: str
    shape: tuple[int, ...] | None
    problem: str = ""


def _is_view(node: fx.Node, root: nn.Module) -> bool:
    if node.op == "call_module":
        return isinstance(root.get_submodule(node.target), _VIEW_MODULES)
    target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    return node.op in ("call_function", "call_method") and target.lower() in _VIEW_OPS


def _trace(model: nn.Module):
    """torchvision's NodePathTracer on the eval-mode model: (graph, {node: qualified name})."""
    from torchvision.models.feature_extraction import NodePathTracer, _set_default_tracer_kwargs

    tracer = NodePathTracer(**_set_default_tracer_kwargs(None))
    try:
        graph = tracer.trace(model.eval())
    except Exception as e:  # data-dependent control flow and friends
        raise ConfigError(
            f"model does not trace with torch.fx ({type(e).__name__}: {e}); use model.probe_mode=modules"
        ) from e
    return tracer.root, graph, tracer.node_to_qualname


def _atomic_names(root: nn.Module, qualname: dict) -> dict[str, fx.Node]:
    """{probe name: graph node} in forward order; the first placeholder is `input`, views are skipped."""
    out: dict[str, fx.Node] = {}
    for node, qual in qualname.items():
        if node.op == "placeholder":
            if not any(n.op == "placeholder" for n in out.values()):
                out["input"] = node  # further inputs (with defaults) are not probe points
        elif node.op != "output" and not _is_view(node, root):
            out[qual] = node
    return out


def snapshot(value: object) -> object:
    """A copy of a tensor output, so that later in-place operations cannot change what was recorded."""
    return value.clone() if torch.is_tensor(value) else value


def _atomic_module(model: nn.Module, names: list[str]) -> fx.GraphModule:
    """A GraphModule returning {name: clone of that node's output} for the given probe names."""
    root, graph, qualname = _trace(model)
    nodes = _atomic_names(root, qualname)
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


def _split_call(name: str, modules: dict[str, nn.Module]) -> tuple[str, int]:
    """`layer1.0.relu_1` → ('layer1.0.relu', 1): the module and which of its calls per forward."""
    if name in modules:
        return name, 0
    m = re.fullmatch(r"(.+)_(\d+)", name)
    if m and m.group(1) in modules:
        return m.group(1), int(m.group(2))
    raise ConfigError(f"probe point {name!r} is not a module of this model (probe_mode=modules)")


class Extractor(nn.Module):
    """Returns {probe name: (batch, …) tensor} for the selected probe points."""

    def __init__(self, model: nn.Module, names: list[str], mode: str):
        super().__init__()
        self.names, self.mode = list(names), mode
        if mode == "atomic":
            self.inner = _atomic_module(model, self.names)
            return
        self.inner = model.eval()
        modules = dict(model.named_modules())
        self._want: dict[tuple[str, int], str] = {}
        for n in self.names:
            if n != "input":
                self._want[_split_call(n, modules)] = n
        self._calls: dict[str, int] = {}
        self._out: dict[str, object] = {}
        for mod_name in {m for m, _ in self._want}:
            modules[mod_name].register_forward_hook(self._hook(mod_name))

    def _hook(self, mod_name: str):
        def fn(_m, _inp, out):
            call = self._calls.get(mod_name, 0)
            self._calls[mod_name] = call + 1
            name = self._want.get((mod_name, call))
            if name is not None:
                self._out[name] = snapshot(out)

        return fn

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.mode == "atomic":
            out = self.inner(x)
        else:
            self._calls, self._out = {}, {}
            if "input" in self.names:
                self._out["input"] = x.clone()
            self.inner(x)
            out = self._out
        for n in self.names:
            if not torch.is_tensor(out.get(n)):
                raise ConfigError(f"probe point {n!r} returns {_kind(out.get(n))}, not one tensor per sample; "
                                  f"leave it out of model.probes")
        return {n: out[n] for n in self.names}


def _kind(value: object) -> str:
    if value is None:
        return "nothing (never called)"
    return "a tuple" if isinstance(value, tuple) else "a dict" if isinstance(value, dict) else f"a {type(value).__name__}"


def _check(name: str, value: object, batch: int) -> Candidate:
    if not torch.is_tensor(value):
        return Candidate(name, None, f"returns {_kind(value)}")
    if value.dim() == 0 or value.shape[0] != batch:
        return Candidate(name, None, f"returns a tensor of shape {tuple(value.shape)}, not one row per sample")
    return Candidate(name, tuple(value.shape[1:]))


def _run(fn, example: torch.Tensor):
    try:
        with torch.inference_mode():
            return fn(example)
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 — wrong input size or channels, mostly
        raise ConfigError(f"the model fails on inputs of shape {tuple(example.shape)} ({type(e).__name__}: {e}); "
                          f"check model.input_size, dataset.image_size and model.in_channels") from e


def candidates(model: nn.Module, mode: str, example: torch.Tensor) -> list[Candidate]:
    """Every probe-able name in forward order (input first), from one forward pass on `example`."""
    if mode == "atomic":
        root, _, qualname = _trace(model)
        names = list(_atomic_names(root, qualname))
        outs = _run(_atomic_module(model, names), example)
        return [_check(n, outs[n], len(example)) for n in names]
    return _module_calls(model, example)


def _module_calls(model: nn.Module, example: torch.Tensor) -> list[Candidate]:
    """Sub-module outputs in the order their forward finishes; repeated calls get _1, _2, …"""
    modules = dict(model.named_modules())
    found: list[Candidate] = [Candidate("input", tuple(example.shape[1:]))]
    calls: dict[str, int] = {}

    def hook(name):
        def fn(_m, _inp, out):
            call = calls.get(name, 0)
            calls[name] = call + 1
            label = name if call == 0 else f"{name}_{call}"
            if call and label in modules:
                raise ConfigError(f"module {name!r} is called several times and {label!r} is also a module name; "
                                  f"use probe_mode=atomic for this model")
            found.append(_check(label, out, len(example)))

        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items()
               if n and not isinstance(m, _VIEW_MODULES)]
    try:
        _run(model.eval(), example)
    finally:
        for h in handles:
            h.remove()
    return found


def select(cands: list[Candidate], patterns: list[str]) -> list[str]:
    """Names matching any pattern (exact or glob), kept in forward order. A pattern that matches
    nothing, or only outputs that cannot be probed, is an error naming the valid probe points."""
    valid = [c.name for c in cands if not c.problem]
    chosen = set()
    for pat in patterns:
        hits = [c for c in cands if fnmatch.fnmatchcase(c.name, pat)]
        if not hits:
            raise ConfigError(f"probe point {pat!r} does not exist; valid probe points: {', '.join(valid)}")
        ok = [c.name for c in hits if not c.problem]
        if not ok:
            raise ConfigError(f"probe point {pat!r} cannot be probed: {hits[0].name} {hits[0].problem}; "
                              f"valid probe points: {', '.join(valid)}")
        chosen.update(ok)
    return [n for n in valid if n in chosen]


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
    cands = candidates(model, cfg.probe_mode, example[:2])
    shapes = {c.name: c.shape for c in cands}
    names = select(cands, cfg.probes)
    return [ProbePoint(n, pos, shapes[n], Reducer(cfg, n, shapes[n], seed).dim) for pos, n in enumerate(names)]
