"""Reuse of earlier work: content digests, and activations linked from earlier runs.

Same dataset + same model + same probe points → same activations, so a run (or every model of a zoo
sweep) takes them from an earlier run under `paths.runs_root` instead of running the model again.
The key digests everything a model's activations depend on:
- the data: dataset config, sample ids and the model inputs' content (`_work/inputs.npy`);
- the model: arch, target, kwargs, probe_mode, reduction (+ projection_dim and the run seed for
  random_projection) and the *content* of its state_dict — a checkpoint, a cached training run or a
  seeded random initialisation are told apart by what the weights are, not by where they came from.
Probe points are not in the key: an earlier run that recorded every probe point needed (or more) serves.
Model names are not in it either, so `lenet5` of one run serves `lenet5_a` of another.

Activation files are hard-linked (copied across file systems). They are never written in place after
their stage finished, so sharing an inode is safe. Only runs whose activation stage finished for that
model are used (their record is written after it), and only while their files still exist.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nnts_ray.config import DatasetConfig, ModelConfig
from nnts_ray.io import mark_done, read_json
from nnts_ray.naming import RunPaths
from nnts_ray.progress import log


def digest_arrays(*arrays: np.ndarray | None) -> str:
    """sha256 over dtype, shape and bytes of each array (None counts as a value)."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def state_digest(model: nn.Module) -> str:
    """Digest of every parameter and buffer: names, dtypes, shapes and raw bytes."""
    state = model.state_dict()
    names = sorted(state)
    header = np.array([f"{k}:{state[k].dtype}:{tuple(state[k].shape)}" for k in names])
    raw = [state[k].detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy() for k in names]
    return digest_arrays(header, *raw)


def data_digest(dataset: DatasetConfig, sample_ids: np.ndarray, inputs: Path) -> str:
    blob = json.dumps(asdict(dataset), sort_keys=True).encode()
    return hashlib.sha256(blob + digest_arrays(sample_ids, np.load(inputs, mmap_mode="r")).encode()).hexdigest()


def activation_key(data: str, mc: ModelConfig, model: nn.Module, seed: int) -> str:
    random_projection = mc.reduction == "random_projection"
    spec = {"data": data, "arch": mc.arch, "target": mc.target, "kwargs": mc.kwargs, "probe_mode": mc.probe_mode,
            "reduction": mc.reduction, "projection_dim": mc.projection_dim if random_projection else None,
            "seed": seed if random_projection else None, "weights": state_digest(model)}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _records(runs_root: str | Path) -> list[Path]:
    """Reuse records of runs directly under runs_root or one level deeper, in path order."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    patterns = [str(RunPaths(depth).marker("reuse", "*")) for depth in ("*", "*/*")]
    return sorted(p for pattern in patterns for p in root.glob(pattern))


def find_earlier(paths: RunPaths, runs_root: str | Path, key: str, layers: list[str], n: int):
    """(run paths, model name) of an earlier run holding every needed layer for this key, or None."""
    here = paths.root.resolve()
    for record in _records(runs_root):
        src = RunPaths(record.parents[2])
        if src.root.resolve() == here:
            continue
        try:
            info = read_json(record)
        except (OSError, ValueError):
            continue
        if info.get("key") != key or info.get("n") != n or not set(layers) <= set(info.get("layers", [])):
            continue
        files = [src.activations(info["model"], layer) for layer in layers]
        if all(f.is_file() and np.load(f, mmap_mode="r").shape[0] == n for f in files):
            return src, info["model"]
    return None


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.link.tmp")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:  # another file system, or links not supported
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def link_earlier(paths: RunPaths, runs_root: str | Path, model: str, key: str, layers: list[str], n: int) -> str | None:
    """Link an earlier run's activations into this run and mark the model's activation stage done.

    Returns the source run directory, or None when this run already has them or nothing matches."""
    if paths.marker("activations", model).is_file():
        return None
    found = find_earlier(paths, runs_root, key, layers, n)
    if found is None:
        return None
    src, src_model = found
    for layer in layers:
        _link(src.activations(src_model, layer), paths.activations(model, layer))
    mark_done(paths.marker("activations", model), {"layers": layers, "n": n, "reused_from": str(src.root)})
    log(f"activations {model}: {len(layers)} probe points linked from {src.root} (same data, weights, probes)")
    return str(src.root)


def record(paths: RunPaths, model: str, key: str, layers: list[str], n: int) -> None:
    """Note that this run holds `model`'s finished activations for `key` (for later runs to reuse)."""
    mark_done(paths.marker("reuse", model), {"key": key, "model": model, "layers": layers, "n": n})
