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
from typing import Any, Callable

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
    """Modification time of `path` itself (a link is not followed: it may lead outside the runs root)."""
    return datetime.fromtimestamp(path.lstat().st_mtime, tz=timezone.utc).isoformat(timespec="seconds")


class ManifestError(ValueError):
    """A manifest.json that cannot be used: unreadable, not JSON, of the wrong shape, or a link out of its run."""


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_OBJECT = ("an object", lambda v: isinstance(v, dict))
_NUMBER = ("a number", lambda v: _integer(v) or isinstance(v, float))
# Fields readers walk into or use as they are: path from the top -> (what it must be, test).
_FIELDS: dict[tuple[str, ...], tuple[str, Callable[[Any], bool]]] = {
    **{(key,): _OBJECT for key in ("config", "conventions", "models", "stages", "versions", "cluster")},
    ("config", "dataset"): _OBJECT,
    ("status",): ("a string", lambda v: isinstance(v, str)),
    ("n_samples",): ("an integer", _integer),
    ("conventions", "stored_ranks"): ("an integer", _integer),
    **{(where, "k"): ("a list of integers", lambda v: isinstance(v, list) and all(map(_integer, v))) for where in ("conventions", "config")},
}


def _problem(manifest: dict[str, Any]) -> str | None:
    """The first field of the wrong type, worded for the catalog's error column; None when all are usable."""
    for path, (kind, usable) in _FIELDS.items():
        value: Any = manifest
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None and not usable(value):
            return f"{'.'.join(path)} is {value!r}, expected {kind}"
    for key, (kind, usable), field in (("models", _OBJECT, None), ("stages", _OBJECT, None), ("stages", _NUMBER, "seconds")):
        for name, info in (manifest.get(key) or {}).items():
            value = info if field is None else (info or {}).get(field)
            if value is not None and not usable(value):
                return f"{key}[{name!r}]{'.' + field if field else ''} is {value!r}, expected {kind}"
    return None


def check_manifest(manifest: Any) -> dict[str, Any]:
    """`manifest` itself when every field a reader walks into has the type it needs; else ManifestError
    naming the field. Catalog and dashboard both read through here, so one bad run never breaks a page."""
    if not isinstance(manifest, dict):
        raise ManifestError(f"{MANIFEST}: top level is {type(manifest).__name__}, expected an object")
    if problem := _problem(manifest):
        raise ManifestError(f"{MANIFEST}: {problem}")
    return manifest


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """The checked manifest of `run_dir`; a manifest.json that links outside the run is refused, not read."""
    try:
        manifest = json.loads(resolve_inside(run_dir, MANIFEST).read_text())
    except (PathRefused, OSError, ValueError) as exc:
        raise ManifestError(f"{MANIFEST}: {exc}") from None
    return check_manifest(manifest)


def manifest_row(root: Path, run_dir: Path) -> dict[str, Any]:
    """One catalog row; a manifest that cannot be used gives status 'unreadable' and the reason."""
    row: dict[str, Any] = {"run_dir": run_dir.relative_to(root).as_posix(), "size_bytes": _size_bytes(run_dir)}
    try:
        manifest = read_manifest(run_dir)
        config = manifest.get("config") or {}
        stages = [
            {"stage": name, "status": info.get("status"), "seconds": info.get("seconds")}
            for name, info in (manifest.get("stages") or {}).items() if info is not None
        ]
        row |= {
            "status": manifest.get("status"),
            "fingerprint": manifest.get("fingerprint"),
            "dataset": (config.get("dataset") or {}).get("name"),
            "models": list(manifest.get("models") or {}),
            "n_samples": manifest.get("n_samples"),
            "k": (manifest.get("conventions") or {}).get("k") or config.get("k"),
            "created": manifest.get("created"),
            "updated": manifest.get("updated") or _mtime_iso(run_dir / MANIFEST),
            "seconds_total": sum(s["seconds"] or 0.0 for s in stages) if stages else None,
            "stages": stages,
            "error": manifest.get("error"),
        }
        return row
    except ManifestError as exc:
        return row | {"status": UNREADABLE, "error": str(exc), "updated": _mtime_iso(run_dir / MANIFEST)}


def scan(root: str | Path) -> pl.DataFrame:
    """The catalog of every run below `root`, newest update first."""
    base = Path(root).resolve()
    rows = [manifest_row(base, run_dir) for run_dir in find_run_dirs(base)]
    return pl.DataFrame(rows, schema=SCHEMA).sort("updated", descending=True, nulls_last=True)
