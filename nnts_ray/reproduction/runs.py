"""A finished run directory as the report needs it: its manifest and one model's metric tables, with
NNTS and NNTP as matrices in network order. Reads only the run contract (SPEC §4), never the core's
internals; file names come from `nnts_ray.naming`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from nnts_ray.io import read_json
from nnts_ray.naming import RunPaths
from nnts_ray.reproduction import paper


class ReproductionError(ValueError):
    """A run directory the report cannot use; the message names it and what is missing."""


@dataclass(frozen=True)
class LayerMatrix:
    """A probe × probe matrix with its probe-point names in network order."""

    names: tuple[str, ...]
    values: np.ndarray  # (L, L) float64

    def index(self, name: str) -> int:
        return self.names.index(name)

    def at(self, a: str, b: str) -> float:
        return float(self.values[self.index(a), self.index(b)])

    def has(self, *names: str) -> bool:
        return all(n in self.names for n in names)

    @staticmethod
    def from_long(rows: pl.DataFrame, names: list[str], a: str, b: str, value: str) -> "LayerMatrix":
        """Pivot a long table (columns a, b, value) into network order; absent cells are 0."""
        pos = {n: i for i, n in enumerate(names)}
        m = np.zeros((len(names), len(names)))
        for x, y, v in rows.select(a, b, value).iter_rows():
            m[pos[x], pos[y]] = v
        return LayerMatrix(tuple(names), m)


@dataclass(frozen=True)
class Run:
    """One model of one complete run directory."""

    path: Path
    manifest: dict
    model: str
    layers: tuple[str, ...]  # probe points in network order
    nnts: pl.DataFrame  # this model against itself
    nntp: pl.DataFrame
    layer_table: pl.DataFrame
    labels: np.ndarray | None  # (n,) int64, sample_id order

    @property
    def paths(self) -> RunPaths:
        return RunPaths(self.path)

    @property
    def n(self) -> int:
        return int(self.manifest["n_samples"])

    @property
    def ks(self) -> list[int]:
        return sorted(self.nnts["k"].unique().to_list())

    @property
    def nntp_ks(self) -> list[int]:
        return sorted(self.nntp.filter(alpha=0)["k"].unique().to_list())

    @property
    def nntp_k(self) -> int | None:
        return preferred_nntp_k(self.nntp_ks)

    @property
    def model_config(self) -> dict:
        return next(m for m in self.manifest["config"]["models"] if m["name"] == self.model)

    @property
    def data_digest(self) -> str:
        """The analysed samples' content digest (what trained weights are keyed by)."""
        return str((self.manifest.get("dataset") or {}).get("digest", "not recorded"))[:16]

    @property
    def weights(self) -> dict:
        return self.manifest["models"][self.model]["weights"]

    @property
    def train_seed(self) -> int:
        return int(self.model_config["train"]["seed"])

    @property
    def class_size(self) -> float | None:
        """Mean samples per class (n / classes present): the scale at which the paper sees NNTS peak."""
        if self.labels is None:
            return None
        return self.n / len(np.unique(self.labels))

    def nnts_matrix(self, k: int, value: str = "jaccard") -> LayerMatrix:
        rows = self.nnts.filter(k=k)
        if rows.is_empty():
            raise ReproductionError(f"{self.path}: no NNTS at k={k}; the run has k={self.ks}")
        return LayerMatrix.from_long(rows, list(self.layers), "layer_a", "layer_b", value)

    def nntp_matrix(self, k: int, alpha: int = 0) -> LayerMatrix:
        rows = self.nntp.filter(k=k, alpha=alpha)
        if rows.is_empty():
            raise ReproductionError(f"{self.path}: no NNTP at k={k}, alpha={alpha}; the run has k={self.nntp_ks}")
        return LayerMatrix.from_long(rows, list(self.layers), "layer_first", "layer_last", "n_pairs")

    def edge_counts(self) -> dict[str, int] | None:
        """|E_v| per probe point as the run recorded it (layers.parquet `n_edges_k`, at the first NNTP k)."""
        if "n_edges_k" not in self.layer_table.columns or self.layer_table["n_edges_k"].null_count():
            return None
        return dict(self.layer_table.select("layer", "n_edges_k").iter_rows())

    def input_features(self, rows: int) -> np.ndarray | None:
        """The first `rows` rows of the first probe point's stored features (the model input when it is
        flattened), or None when the run did not keep activations."""
        path = self.paths.activations(self.model, self.layers[0])
        return np.asarray(np.load(path, mmap_mode="r")[:rows]) if path.is_file() else None


def preferred_nntp_k(ks: list[int]) -> int | None:
    """The paper's NNTP k when computed, else the smallest one (None when there is no NNTP table)."""
    return paper.NNTP_K if paper.NNTP_K in ks else (min(ks) if ks else None)


def load_run(path: str | Path, model: str | None = None) -> Run:
    """Read a complete run directory; `model` may be left out when the run holds one model."""
    paths = RunPaths(path)
    if not paths.manifest.is_file():
        raise ReproductionError(f"{path}: no manifest.json; give a run directory written by nnts-ray")
    manifest = read_json(paths.manifest)
    if manifest.get("status") != "complete":
        raise ReproductionError(f"{path}: the run is {manifest.get('status')!r}, not complete; finish it first")
    models = list(manifest["models"])
    if model is None and len(models) != 1:
        raise ReproductionError(f"{path} holds models {models}; choose one with --model")
    model = model or models[0]
    if model not in models:
        raise ReproductionError(f"--model {model!r} is not in {path}; it holds {models}")
    layer_table = pl.read_parquet(paths.metric("layers")).filter(model=model).sort("position")
    nnts = pl.read_parquet(paths.metric("nnts")).filter(model_a=model, model_b=model)
    nntp = pl.read_parquet(paths.metric("nntp")).filter(model=model)
    samples = pl.read_parquet(paths.samples, columns=["sample_id", "label"]).sort("sample_id")
    labels = None if samples["label"].null_count() == len(samples) else samples["label"].to_numpy()
    return Run(Path(path), manifest, model, tuple(layer_table["layer"].to_list()), nnts, nntp, layer_table, labels)
