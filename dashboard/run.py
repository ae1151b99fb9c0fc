"""One opened run: its directory, manifest and the facts every page needs (models, probe-point order, k)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from dashboard import loaders


def _probe_order(path: Path, manifest: dict[str, Any], model: str) -> list[str]:
    """Probe points of `model` in chain order: manifest positions, else metrics/layers.parquet, else []
    (a run that has not recorded them yet)."""
    points = ((manifest.get("models") or {}).get(model) or {}).get("probe_points") or []
    try:
        return [str(p["layer"]) for p in sorted(points, key=lambda p: p["position"])] if points else _table_order(path, model)
    except (KeyError, TypeError) as exc:
        raise loaders.DataError(f"manifest.json: probe points of model {model!r} need 'layer' and 'position' ({exc!r}).") from None


def _table_order(path: Path, model: str) -> list[str]:
    try:
        return loaders.table(path, "layers").filter(pl.col("model") == model).sort("position")["layer"].to_list()
    except loaders.MissingTable:
        return []


@dataclass(frozen=True)
class Run:
    name: str  # relative to the runs root, as the catalog lists it
    path: Path  # resolved, inside the runs root
    manifest: dict[str, Any]
    orders: dict[str, list[str]] = field(default_factory=dict)  # model -> probe points in chain order

    @staticmethod
    def open(root: Path, name: str) -> "Run":
        """Raises loaders.DataError for a path outside root, or a missing, unreadable or malformed manifest."""
        path = loaders.run_path(root, name)
        manifest = loaders.manifest(path)
        return Run.of(name, path, manifest)

    @staticmethod
    def of(name: str, path: Path, manifest: dict[str, Any]) -> "Run":
        orders = {str(m): _probe_order(path, manifest, m) for m in manifest.get("models") or {}}
        return Run(name=name, path=path, manifest=manifest, orders=orders)

    @property
    def status(self) -> str:
        return str(self.manifest.get("status", "unknown"))

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def models(self) -> list[str]:
        """Models whose probe points are known (the ones any view can show)."""
        return [m for m, order in self.orders.items() if order]

    def layers(self, model: str) -> list[str]:
        return self.orders[model]

    @property
    def k(self) -> list[int]:
        """The searched neighbourhood sizes (neighbour tables hold ranks below max(k))."""
        config = self.manifest.get("config") or {}
        return sorted(int(k) for k in (self.manifest.get("conventions") or {}).get("k") or config.get("k") or [])

    @property
    def stages(self) -> pl.DataFrame:
        """Per-stage status and seconds, in the order the pipeline recorded them."""
        rows = [{"stage": s, "status": i.get("status"), "seconds": i.get("seconds")} for s, i in (self.manifest.get("stages") or {}).items()]
        return pl.DataFrame(rows, schema={"stage": pl.String, "status": pl.String, "seconds": pl.Float64})

    def pending(self, what: str) -> str:
        """The message for a table this run lacks: not written yet while running, else not computed."""
        if self.running:
            return f"{what}: not written yet — this run is still in progress (status 'running')."
        return f"{what}: not computed in this run."
