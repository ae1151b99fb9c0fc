"""One opened run: its directory, manifest and the facts every page needs (models, probe-point order, k)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from dashboard import loaders


@dataclass(frozen=True)
class Run:
    name: str  # relative to the runs root, as the catalog lists it
    path: Path  # resolved, inside the runs root
    manifest: dict[str, Any]

    @staticmethod
    def open(root: Path, name: str) -> "Run":
        """Raises loaders.DataError for a path outside root, a missing or an unreadable manifest."""
        path = loaders.run_path(root, name)
        return Run(name=name, path=path, manifest=loaders.manifest(path))

    @property
    def status(self) -> str:
        return str(self.manifest.get("status", "unknown"))

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def models(self) -> list[str]:
        return list(self.manifest.get("models") or {})

    @property
    def stages(self) -> pl.DataFrame:
        """Per-stage status and seconds, in the order the pipeline recorded them."""
        rows = [{"stage": s, "status": i.get("status"), "seconds": i.get("seconds")} for s, i in (self.manifest.get("stages") or {}).items()]
        return pl.DataFrame(rows, schema={"stage": pl.String, "status": pl.String, "seconds": pl.Float64})

    @property
    def k(self) -> list[int]:
        """The searched neighbourhood sizes (neighbour tables hold ranks below max(k))."""
        config = self.manifest.get("config") or {}
        return sorted(int(k) for k in (self.manifest.get("conventions") or {}).get("k") or config.get("k") or [])

    def layers(self, model: str) -> list[str]:
        """Probe points of `model` in chain order: manifest positions, else metrics/layers.parquet."""
        points = ((self.manifest.get("models") or {}).get(model) or {}).get("probe_points") or []
        if points:
            return [p["layer"] for p in sorted(points, key=lambda p: p["position"])]
        layers = loaders.table(self.path, "layers").filter(model=model).sort("position")
        return layers["layer"].to_list()

    def pending(self, what: str) -> str:
        """The message for a table this run lacks: not written yet while running, else not computed."""
        if self.running:
            return f"{what}: not written yet — this run is still in progress (status 'running')."
        return f"{what}: not computed in this run."
