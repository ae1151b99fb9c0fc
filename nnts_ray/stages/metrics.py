"""Stage 5: neighbour tables → metrics/*.parquet (NNTS, per-sample, NNTP, layers) with Polars."""

from __future__ import annotations

import polars as pl

from nnts_ray.api import metric_tables, probe_frame
from nnts_ray.config import RunConfig
from nnts_ray.io import mark_done, write_parquet
from nnts_ray.metrics.nnts import Probe
from nnts_ray.naming import RunPaths
from nnts_ray.schemas import LAYERS, NNTP, NNTS, PER_SAMPLE

import numpy as np


def scan_neighbours(paths: RunPaths, probes: list[Probe]) -> pl.LazyFrame:
    """The neighbour rows of every probe point, with `probe` and `position` columns."""
    tables = {
        (p.model, p.layer): pl.scan_parquet(paths.neighbours_dir(p.model, p.layer) / "*.parquet")
        for p in probes
    }
    return probe_frame(tables, probes)


def run_metrics(paths: RunPaths, rc: RunConfig, sample_ids: np.ndarray, probes: list[Probe],
                layer_rows: list[dict]) -> None:
    marker = paths.marker("metrics")
    if marker.is_file():
        return
    frame = scan_neighbours(paths, probes)
    nnts_t, per_sample, nntp_t, edges = metric_tables(
        frame, probes, sample_ids, rc.k, rc.metrics.nntp_k, rc.metrics.alpha, rc.metrics.sample_block
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
    write_parquet(layers.to_arrow(), paths.metric("layers"), LAYERS)
    mark_done(marker, {"nnts_rows": nnts_t.height, "nntp_rows": nntp_t.height})
