"""Which outputs of a model are probe points, in forward order, and which of them a run selects.

`atomic` mode lists every torch.fx graph node (like the paper's atomic operations, functional calls
such as F.relu included); `modules` mode lists module outputs through forward hooks, for models that
do not trace: every sub-module (containers included, e.g. `layer1`), ordered by when its forward
finishes. Outputs that are not one tensor per sample (tuples, dicts, sizes) are listed as not
probe-able: glob patterns pass over them; naming one is an error that says what it returns (a
tuple's elements are probe points of their own: its `getitem` nodes in atomic mode).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import torch
from torch import nn

from nnts_ray.config import ConfigError, ModelConfig
from nnts_ray.plan import ProbePoint
from nnts_ray.probes.calls import CallNamer
from nnts_ray.probes.capture import atomic_module, describe
from nnts_ray.probes.graph import VIEW_MODULES, atomic_nodes, trace
from nnts_ray.probes.reduce import Reducer


@dataclass(frozen=True)
class Candidate:
    """A probe-able name with its per-sample output shape, or why it cannot be probed."""

    name: str
    shape: tuple[int, ...] | None
    problem: str = ""


def _check(name: str, value: object, batch: int) -> Candidate:
    if not torch.is_tensor(value):
        return Candidate(name, None, f"returns {describe(value)}")
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
        raise ConfigError(f"the model fails on inputs of shape {tuple(example.shape)} ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}); check model.input_size, "
                          f"dataset.image_size and model.in_channels") from e


def candidates(model: nn.Module, mode: str, example: torch.Tensor) -> list[Candidate]:
    """Every probe-able name in forward order (input first), from one forward pass on `example`."""
    if mode == "atomic":
        root, _, qualname = trace(model)
        names = list(atomic_nodes(root, qualname))
        outs = _run(atomic_module(model, names), example)
        return [_check(n, outs[n], len(example)) for n in names]
    return _module_calls(model, example)


def _module_calls(model: nn.Module, example: torch.Tensor) -> list[Candidate]:
    """Sub-module outputs in the order their forward finishes; repeated calls get _1, _2, …"""
    modules = dict(model.named_modules())
    found: list[Candidate] = [Candidate("input", tuple(example.shape[1:]))]
    namer = CallNamer()

    def hook(name):
        def fn(_m, _inp, out):
            label, call = namer.next(name)
            if call and label in modules:
                raise ConfigError(f"module {name!r} is called several times and {label!r} is also a module name; "
                                  f"use probe_mode=atomic for this model")
            found.append(_check(label, out, len(example)))

        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items()
               if n and not isinstance(m, VIEW_MODULES)]
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


def probe_points(model: nn.Module, cfg: ModelConfig, example: torch.Tensor, seed: int) -> list[ProbePoint]:
    """The selected probe points of model `cfg.name` with their output shapes and dims after reduction,
    from one forward pass on `example`."""
    cands = candidates(model, cfg.probe_mode, example[:2])
    shapes = {c.name: c.shape for c in cands}
    return [ProbePoint(cfg.name, n, pos, shapes[n], Reducer(cfg, n, shapes[n], seed).dim, cfg.reduction)
            for pos, n in enumerate(select(cands, cfg.probes))]
