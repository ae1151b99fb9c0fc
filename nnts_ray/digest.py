"""Content digests: what makes two arrays, models or files "the same" for reuse and verification."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

_CHUNK = 1 << 24  # bytes hashed at a time when reading a file


def arrays(*items: np.ndarray | None) -> str:
    """sha256 over dtype, shape and bytes of each array (None counts as a value)."""
    h = hashlib.sha256()
    for a in items:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def state(model) -> str:
    """Digest of every parameter and buffer of a torch module: names, dtypes, shapes and raw bytes."""
    import torch

    sd = model.state_dict()
    names = sorted(sd)
    header = np.array([f"{k}:{sd[k].dtype}:{tuple(sd[k].shape)}" for k in names])
    raw = [sd[k].detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy() for k in names]
    return arrays(header, *raw)


def file(path: str | Path) -> dict:
    """{'size': bytes, 'sha256': hex} of a file, read in chunks (a record a completion marker keeps)."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return {"size": size, "sha256": h.hexdigest()}


def file_matches(path: str | Path, record: dict | None) -> bool:
    """True when `path` exists with the size and digest of `record` (the size is checked first: cheap)."""
    p = Path(path)
    if not record or not p.is_file() or p.stat().st_size != record.get("size"):
        return False
    return file(p)["sha256"] == record.get("sha256")
