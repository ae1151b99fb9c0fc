"""Stage 5: neighbour tables → metrics/*.parquet: NNTS, per-sample, NNTP, layers (Polars), then the\nanalysis suite (nnts_ray.analysis) whose per-layer statistics join layers.parquet."""

from __future__ import annotations

import numpy as np
import polars as pl

from nnts_ray.analysis.stage import AnalysisInputs, AnalysisSettings, run_analysis
from nnts_ray.api import metric_tables
from nnts_ray.config import RunConfig
from nnts_ray.io import mark_done, write_parquet
from nnts_ray.metrics.nnts import Probe
from nnts_ray.naming import RunPaths
from nnts_ray.schemas import LAYERS, NNTP, NNTS, PER_SAMPLE


def scan_neighbours(paths: RunPaths, probes: list[Probe]) -> dict[tuple[str, str], pl.LazyFrame]:
    """A scan of the neighbour table of every probe point, keyed by (model, layer)."""
    return {(p.model, p.layer): pl.scan_parquet(paths.neighbours_dir(p.model, p.layer) / "*.parquet")
            for p in probes}


def run_metrics(paths: RunPaths, rc: RunConfig, sample_ids: np.ndarray, labels: np.ndarray | None,
                probes: list[Probe], layer_rows: list[dict]) -> None:
    marker = paths.marker("metrics")
    if marker.is_file():
        return
    nnts_t, per_sample, nntp_t, edges = metric_tables(
        scan_neighbours(paths, probes), probes, sample_ids, rc.k, rc.metrics.nntp_k, rc.metrics.alpha, rc.metrics.sample_block
    )
    write_parquet(nnts_t.to_arrow(), paths.metric("nnts"), NNTS)
    write_parquet(nntp_t.to_arrow(), paths.metric("nntp"), NNTP)
    if rc.metrics.per_sample:
        write_parquet(per_sample.to_arrow(), paths.metric("per_sample"), PER_SAMPLE)
    first_k = rc.metrics.nntp_k[0] if rc.metrics.nntp_k else None
    layers = pl.DataFrame(layer_rows, schema={"model": pl.String, "layer": pl.String, "position": pl.Int64,
                                              "dim": pl.Int64, "shape": pl.String, "reduction": pl.String})
    e = edges.filter(pl.col("k") == first_k).select("model", "layer", pl.col("n_edges").alias("n_edges_k"))
    layers = layers.join(e, on=["model", "layer"], how="left", validate="1:1")
    extra = run_suite(paths, rc, sample_ids, labels, probes, per_sample)
    stats = extra.pop("layer_stats")
    layers = layers.join(stats.drop("position"), on=["model", "layer"], how="left", validate="1:1")
    write_parquet(layers.to_arrow(), paths.metric("layers"), LAYERS)
    for name, table in extra.items():
        write_parquet(table.to_arrow(), paths.metric(name))
    mark_done(marker, {"nnts_rows": nnts_t.height, "nntp_rows": nntp_t.height, "analysis": sorted(extra)})


def run_suite(paths: RunPaths, rc: RunConfig, sample_ids: np.ndarray, labels: np.ndarray | None,
              probes: list[Probe], per_sample: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The analysis suite (TwoNN, label agreement, null, per class, most changed, partners, CKA,
    monotonicity) for every k up to metrics.analysis_max_k, each probe's neighbours read once."""
    m = rc.metrics
    ks = [k for k in rc.k if k <= m.analysis_max_k]
    nntp_ks = [k for k in m.nntp_k if k <= m.analysis_max_k]
    if not ks:
        return {"layer_stats": pl.DataFrame(schema={"model": pl.String, "layer": pl.String, "position": pl.Int64})}
    k_read = max(ks + nntp_ks)
    cache: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}

    def neighbours(model: str, layer: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        if (model, layer) not in cache:
            t = (pl.scan_parquet(paths.neighbours_dir(model, layer) / "*.parquet")
                 .filter(pl.col("rank") < k_read).sort("sample_id", "rank").collect())
            cache[(model, layer)] = (t["neighbour_id"].to_numpy().reshape(-1, k_read),
                                     t["distance"].to_numpy().reshape(-1, k_read))
        ids, dist = cache[(model, layer)]
        return ids[:, :k], dist[:, :k]

    def features(model: str, layer: str) -> np.ndarray | None:
        f = paths.activations(model, layer)
        return np.load(f, mmap_mode="r") if m.cka and f.is_file() else None

    ctx = AnalysisInputs(
        sample_ids=sample_ids, labels=labels, probes=[(p.model, p.layer, p.position) for p in probes], ks=ks,
        neighbours=neighbours, features=features,
        per_sample=per_sample.filter(pl.col("k").is_in(ks)) if rc.metrics.per_sample else None, metric=rc.knn.metric,
    )
    settings = AnalysisSettings(
        permutations=m.permutations, seed=m.seed, null_max_k=m.null_max_k, twonn_discard=m.twonn_discard,
        cka_batch=m.cka_batch, cka_max_dim=m.cka_max_dim, most_changed=m.most_changed, nntp_ks=nntp_ks or [ks[0]],
    )
    return run_analysis(ctx, settings)
