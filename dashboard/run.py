"""One opened run: its directory, manifest and the facts every page needs (models, probe-point order, k)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl

from dashboard import loaders

class Weights(NamedTuple):
    """Where a model's weights came from, and its accuracy on the training data where it was trained here."""

    source: str | None
    train_accuracy: float | None


def read_weights(info: dict[str, Any]) -> Weights:
    """manifest["models"][m]["weights"] read as {"source", "train_accuracy"}; runs written before the
    core named it "source" hold the source under "weights" (and "source" meant the pretrained keywords)."""
    record = info.get("weights")
    if not isinstance(record, dict):
        return Weights(None, None)
    source = record.get("source") if isinstance(record.get("source"), str) else record.get("weights")
    accuracy = record.get("train_accuracy")
    return Weights(str(source) if source is not None else None, float(accuracy) if isinstance(accuracy, (int, float)) else None)


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
    def n_samples(self) -> int | None:
        return self.manifest.get("n_samples")

    @property
    def stored_ranks(self) -> int:
        """Ranks stored per sample in the neighbour tables (conventions.stored_ranks; before the core
        recorded it, every rank up to the largest k)."""
        stored = (self.manifest.get("conventions") or {}).get("stored_ranks")
        return int(stored) if stored is not None else max(self.k, default=0)

    def weights(self, model: str) -> Weights:
        return read_weights((self.manifest.get("models") or {}).get(model) or {})

    def title(self, what: str, model: str | None = None, k: object = None) -> str:
        """A figure's title: what it shows, for which model and k, from which run and how many samples,
        so an exported PNG or HTML file says what it is on its own."""
        facts = [model, None if k is None else f"k = {k}", f"run {self.name}", None if self.n_samples is None else f"n = {self.n_samples:,}"]
        return f"{what} — " + " · ".join(f for f in facts if f)

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
