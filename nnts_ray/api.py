"""Notebook API on plain arrays: the same search and metric code the pipeline runs, without Ray.

>>> from nnts_ray.api import analyse
>>> res = analyse({"input": X0, "hidden": X1, "logits": X2}, k=[15, 100])
>>> res.nnts          # SPEC §4 nnts table (Polars)
>>> res.nntp          # run-count matrix entries
>>> res.neighbours    # model, layer, sample_id, rank, neighbour_id, distance
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import polars as pl

from nnts_ray.knn.exact import knn_rows
from nnts_ray.metrics.nnts import Probe, nnts
from nnts_ray.metrics.nntp import check_identity, nntp


@dataclass(frozen=True)
class Analysis:
    neighbours: pl.DataFrame  # model, layer, sample_id, rank, neighbour_id, distance
    nnts: pl.DataFrame  # SPEC §4 metrics/nnts.parquet
    per_sample: pl.DataFrame  # SPEC §4 metrics/per_sample.parquet
    nntp: pl.DataFrame  # SPEC §4 metrics/nntp.parquet
    edges: pl.DataFrame  # model, layer, k, n_edges: |E_v| per probe point


def neighbour_table(rows: np.ndarray, distance: np.ndarray, sample_ids: np.ndarray) -> pl.DataFrame:
    """Neighbour rows (SPEC §4 columns) from (n, k) row indices; rows map to ids via sample_ids."""
    n, k = rows.shape
    return pl.DataFrame(
        {
            "sample_id": np.repeat(sample_ids, k),
            "rank": np.tile(np.arange(k, dtype=np.int32), n),
            "neighbour_id": sample_ids[rows.ravel()],
            "distance": distance.ravel().astype(np.float32),
        },
        schema={"sample_id": pl.Int64, "rank": pl.Int32, "neighbour_id": pl.Int64, "distance": pl.Float32},
    )


def metric_tables(
    tables: Mapping[tuple[str, str], pl.LazyFrame | pl.DataFrame],
    probes: list[Probe],
    sample_ids: np.ndarray,
    ks: Sequence[int],
    nntp_ks: Sequence[int],
    alphas: Sequence[int],
    sample_block: int = 20000,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(nnts, per_sample, nntp, edges) for the neighbour tables of several probe points (any models),
    keyed by (model, layer)."""
    frames = [tables[(p.model, p.layer)].lazy() for p in probes]
    nnts_table, per_sample = nnts(frames, probes, sample_ids, list(ks), sample_block)
    nntp_parts, edge_parts = [], []
    for model in dict.fromkeys(p.model for p in probes):
        chain = [p for p in probes if p.model == model]
        name_at = pl.DataFrame({"position": [p.position for p in chain], "layer": [p.layer for p in chain]},
                               schema={"position": pl.Int64, "layer": pl.String})
        frames = [(p.position, tables[(p.model, p.layer)].lazy()) for p in chain]
        for k in nntp_ks:
            runs, edges = nntp(frames, sample_ids, k, list(alphas), sample_block)
            if 0 in alphas:
                check_identity(runs, edges)
            nntp_parts.append(
                runs.join(name_at.rename({"position": "first", "layer": "layer_first"}), on="first", validate="m:1")
                .join(name_at.rename({"position": "last", "layer": "layer_last"}), on="last", validate="m:1")
                .with_columns(model=pl.lit(model), k=pl.lit(k, pl.Int64))
                .sort("alpha", "first", "last")
                .select("model", "layer_first", "layer_last", "k", "alpha", "n_pairs")
            )
            edge_parts.append(edges.join(name_at, on="position", validate="1:1").with_columns(
                model=pl.lit(model), k=pl.lit(k, pl.Int64)).select("model", "layer", "k", "n_edges"))
    empty_nntp = pl.DataFrame(schema={"model": pl.String, "layer_first": pl.String, "layer_last": pl.String,
                                      "k": pl.Int64, "alpha": pl.Int64, "n_pairs": pl.Int64})
    empty_edges = pl.DataFrame(schema={"model": pl.String, "layer": pl.String, "k": pl.Int64, "n_edges": pl.Int64})
    return (
        nnts_table,
        per_sample,
        pl.concat(nntp_parts) if nntp_parts else empty_nntp,
        pl.concat(edge_parts) if edge_parts else empty_edges,
    )


def analyse(
    features: Mapping[str, np.ndarray] | Sequence[np.ndarray],
    k: int | Sequence[int] = (15, 100),
    metric: str = "l2",
    nntp_k: Sequence[int] | None = None,
    alpha: Sequence[int] = (0,),
    sample_ids: np.ndarray | None = None,
    model: str = "model",
) -> Analysis:
    """Neighbour tables and NNTS/NNTP for per-layer (n, d) feature matrices given in chain order.

    One exact search per layer at the largest k; smaller k are its prefixes. `sample_ids` default
    to 0..n-1 and must be unique; rows of every matrix are the same samples in the same order.
    """
    named = dict(features) if isinstance(features, Mapping) else {f"layer{i}": f for i, f in enumerate(features)}
    ks = sorted({int(k)} if np.isscalar(k) else {int(v) for v in k})
    n = next(iter(named.values())).shape[0]
    ids = np.arange(n, dtype=np.int64) if sample_ids is None else np.asarray(sample_ids, dtype=np.int64)
    if len(np.unique(ids)) != n:
        raise ValueError("sample_ids must be unique, one per row")
    order = np.argsort(ids, kind="stable")  # rows in ascending id order: the tie rule's id order
    ids = ids[order]
    probes, tables = [], {}
    for pos, (layer, x) in enumerate(named.items()):
        x = np.asarray(x).reshape(len(x), -1)
        if x.shape[0] != n:
            raise ValueError(f"layer {layer!r} has {x.shape[0]} rows, expected {n}")
        bad = int((~np.isfinite(x)).sum())
        if bad:
            raise ValueError(f"layer {layer!r} has {bad} non-finite values; neighbour search needs finite features")
        nb = knn_rows(x[order], ks[-1], metric=metric)
        probes.append(Probe(model, layer, pos))
        tables[(model, layer)] = neighbour_table(nb.rows, nb.distance, ids)
    nnts_t, per_sample, nntp_t, edges = metric_tables(
        tables, probes, ids, ks, [ks[0]] if nntp_k is None else list(nntp_k), list(alpha)
    )
    neighbours = pl.concat(
        [t.with_columns(model=pl.lit(m), layer=pl.lit(l)) for (m, l), t in tables.items()]
    ).select("model", "layer", "sample_id", "rank", "neighbour_id", "distance")
    return Analysis(neighbours=neighbours, nnts=nnts_t, per_sample=per_sample, nntp=nntp_t, edges=edges)
