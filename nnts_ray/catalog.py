"""The run catalog: one row per run directory found below a runs root, read from manifest.json only.

The dashboard lists runs from this table, so scanning must stay cheap on big runs: it reads only the
manifests, stops descending at a run directory, and imports nothing heavier than Polars (never torch,
ray or faiss). It is also the one place that decides which paths below a runs root may be read.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from nnts_ray.naming import RunPaths

MANIFEST = RunPaths(".").manifest.name
UNREADABLE = "unreadable"  # status of a run whose manifest.json cannot be parsed

SCHEMA = pl.Schema(
    {
        "run_dir": pl.String,  # relative to the runs root, '/'-separated
        "status": pl.String,  # running | complete | failed | unreadable
        "fingerprint": pl.String,
        "dataset": pl.String,
        "models": pl.List(pl.String),
        "n_samples": pl.Int64,
        "k": pl.List(pl.Int64),
        "created": pl.String,
        "updated": pl.String,
        "size_bytes": pl.Int64,
        "seconds_total": pl.Float64,
        "stages": pl.List(pl.Struct({"stage": pl.String, "status": pl.String, "seconds": pl.Float64})),
        "error": pl.String,
    }
)


class PathRefused(ValueError):
    """A requested path lies outside the runs root (through '..', an absolute path or a symlink)."""


def resolve_inside(root: str | Path, relative: str | Path) -> Path:
    """Resolve `relative` below `root`, refusing anything that ends up outside it."""
    base = Path(root).resolve()
    target = (base / relative).resolve()
    if target != base and base not in target.parents:
        raise PathRefused(f"{str(relative)!r} leads outside {str(base)!r}")
    return target


def find_run_dirs(root: str | Path) -> list[Path]:
    """Directories below `root` holding a manifest.json; does not descend into a run once found."""
    found: list[Path] = []
    for current, dirs, files in os.walk(root):
        if MANIFEST in files:
            found.append(Path(current))
            dirs.clear()
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
    return sorted(found)


def _file_size(path: str) -> int:
    """Size without following links; 0 for a file a running stage renamed away meanwhile."""
    try:
        return os.lstat(path).st_size
    except FileNotFoundError:
        return 0


def _size_bytes(run_dir: Path) -> int:
    return sum(_file_size(os.path.join(d, f)) for d, _, files in os.walk(run_dir) for f in files)


def _mtime_iso(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc).isoformat(timespec="seconds")


def manifest_row(root: Path, run_dir: Path) -> dict[str, Any]:
    """One catalog row; a manifest that cannot be parsed gives status 'unreadable' and the reason."""
    manifest_path = run_dir / MANIFEST
    row: dict[str, Any] = {"run_dir": run_dir.relative_to(root).as_posix(), "size_bytes": _size_bytes(run_dir)}
    try:
        manifest = json.loads(manifest_path.read_text())
        if not isinstance(manifest, dict):
            raise ValueError(f"top level is {type(manifest).__name__}, expected an object")
    except (OSError, ValueError) as exc:
        return row | {"status": UNREADABLE, "error": f"{MANIFEST}: {exc}", "updated": _mtime_iso(manifest_path)}
    config = manifest.get("config") or {}
    stages = [
        {"stage": name, "status": info.get("status"), "seconds": info.get("seconds")}
        for name, info in (manifest.get("stages") or {}).items()
    ]
    return row | {
        "status": manifest.get("status"),
        "fingerprint": manifest.get("fingerprint"),
        "dataset": (config.get("dataset") or {}).get("name"),
        "models": list(manifest.get("models") or {}),
        "n_samples": manifest.get("n_samples"),
        "k": (manifest.get("conventions") or {}).get("k") or config.get("k"),
        "created": manifest.get("created"),
        "updated": manifest.get("updated") or _mtime_iso(manifest_path),
        "seconds_total": sum(s["seconds"] or 0.0 for s in stages) if stages else None,
        "stages": stages,
        "error": manifest.get("error"),
    }


def scan(root: str | Path) -> pl.DataFrame:
    """The catalog of every run below `root`, newest update first."""
    base = Path(root).resolve()
    rows = [manifest_row(base, run_dir) for run_dir in find_run_dirs(base)]
    return pl.DataFrame(rows, schema=SCHEMA).sort("updated", descending=True, nulls_last=True)
