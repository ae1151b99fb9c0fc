"""Activations taken from earlier runs instead of running the model again — only when verified.

Same data + same model + same probe points → same activations, so a run (or every model of a zoo
sweep) links them from an earlier run under `paths.runs_root`. The key digests everything a model's
activations depend on: the data's content (sample ids, labels, model inputs), the architecture,
probe mode, reduction (+ projection_dim and the run seed for random_projection) and the *content* of
the weights — a checkpoint, a cached training run or a seeded initialisation are told apart by what the
weights are, not by where they came from. Model names are not in it (`lenet5` of one run serves
`lenet5_a` of another); probe points are not either (a run holding more probe points serves).

A file of the right shape is not the right file: an earlier run's files are linked only when each
still has the size and sha256 its completion marker recorded when it was written; a run whose files
fail the check is skipped with a warning. Linked files are hard links (copies across file systems);
nothing writes an activation file in place after its stage finished, so sharing an inode is safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from nnts_ray.io import mark_files, read_json, write_json
from nnts_ray.naming import RunPaths
from nnts_ray.plan import ModelPlan, RunPlan
from nnts_ray.progress import log, warn


def activation_key(plan: RunPlan, mp: ModelPlan, state_digest: str) -> str:
    mc = mp.config
    random_projection = mc.reduction == "random_projection"
    spec = {"data": plan.data.digest, "arch": mc.arch, "target": mc.target, "kwargs": mc.kwargs,
            "probe_mode": mc.probe_mode, "reduction": mc.reduction,
            "projection_dim": mc.projection_dim if random_projection else None,
            "seed": plan.config.seed if random_projection else None, "weights": state_digest}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _records(runs_root: str | Path) -> list[Path]:
    """Reuse records of runs directly under runs_root or one level deeper, in path order."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    patterns = [str(RunPaths(depth).marker("reuse", "*")) for depth in ("*", "*/*")]
    return sorted(p for pattern in patterns for p in root.glob(pattern))


def _verified_source(src: RunPaths, model: str, layers: list[str]) -> dict | None:
    """{layer: file record} of `src`'s activations of `model` when each file matches its record."""
    from nnts_ray import digest

    try:
        recorded = read_json(src.marker("activations", model)).get("files", {})
    except (OSError, ValueError, AttributeError):
        return None
    out = {}
    for layer in layers:
        if layer not in recorded or not digest.file_matches(src.activations(model, layer), recorded[layer]):
            warn(f"not reusing activations from {src.root}: {model}/{layer} does not match the digest "
                 f"recorded when it was written")
            return None
        out[layer] = recorded[layer]
    return out


def link(src: Path, dst: Path) -> None:
    """`dst` becomes a hard link to `src` (a copy across file systems), replacing it atomically."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.link.tmp")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:  # another file system, or links not supported
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def link_earlier(plan: RunPlan, paths: RunPaths, mp: ModelPlan, key: str, inputs: str) -> str | None:
    """Link a verified earlier run's activations of this model into this run and mark them done
    (with their digests). Returns the source run directory, or None when nothing serves."""
    here = paths.root.resolve()
    layers = [p.layer for p in mp.probes]
    for record in _records(plan.config.paths.runs_root):
        src = RunPaths(record.parents[2])
        if src.root.resolve() == here:
            continue
        try:
            info = read_json(record)
        except (OSError, ValueError):
            continue
        if not isinstance(info, dict) or info.get("key") != key or info.get("n") != plan.data.n \
                or not set(layers) <= set(info.get("layers", [])):
            continue
        if _verified_source(src, info["model"], layers) is None:
            continue
        files = {layer: paths.activations(mp.name, layer) for layer in layers}
        for layer in layers:
            link(src.activations(info["model"], layer), files[layer])
        mark_files(paths.marker("activations", mp.name), files, {"reused_from": str(src.root)}, inputs)
        log(f"activations {mp.name}: {len(layers)} probe points linked from {src.root} (same data and weights, "
            f"digests checked)")
        return str(src.root)
    return None


def record(paths: RunPaths, mp: ModelPlan, key: str, n: int) -> None:
    """Note that this run holds `mp`'s finished activations for `key` (for later runs to reuse)."""
    write_json({"key": key, "model": mp.name, "layers": [p.layer for p in mp.probes], "n": n},
               paths.marker("reuse", mp.name))
