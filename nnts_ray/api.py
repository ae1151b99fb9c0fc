"""Notebook API on plain arrays: the same search and metric code the pipeline runs, without Ray.

>>> from nnts_ray.api import analyse
>>> res = analyse({"input": X0, "hidden": X1, "logits": X2}, k=[15, 100])
>>> res.nnts          # the nnts table (nnts_ray.schemas.NNTS), Polars
>>> res.nntp          # run-count matrix entries
>>> res.neighbours    # model, layer, sample_id, rank, neighbour_id, distance

Inputs are checked here, once, with the rules the pipeline's plan uses (`Ks.resolve`): a bad value
raises ConfigError (a ValueError) naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import polars as pl

from nnts_ray.config import METRICS, ConfigError, choice
from nnts_ray.knn.exact import knn_rows
from nnts_ray.metrics.tables import metric_tables
from nnts_ray.plan import Ks, ProbePoint

_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Analysis:
    neighbours: pl.DataFrame  # model, layer, sample_id, rank, neighbour_id, distance
    nnts: pl.DataFrame  # schemas.NNTS
    per_sample: pl.DataFrame  # schemas.PER_SAMPLE
    nntp: pl.DataFrame  # schemas.NNTP
    edges: pl.DataFrame  # model, layer, k, n_edges: |E_v| per probe point
    partners: pl.DataFrame  # schemas.NNTP_PARTNERS


def neighbour_table(rows: np.ndarray, distance: np.ndarray, sample_ids: np.ndarray) -> pl.DataFrame:
    """Neighbour rows (schemas.NEIGHBOURS columns) from (n, k) row indices; rows map to ids via sample_ids."""
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


def _features(features: Mapping[str, np.ndarray] | Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Per-layer (n, d) float32 matrices in chain order, every one checked."""
    named = dict(features) if isinstance(features, Mapping) else {f"layer{i}": f for i, f in enumerate(features)}
    if not named:
        raise ConfigError("features is empty; give per-layer (n, d) arrays in chain order, e.g. {'input': X0, 'out': X1}")
    out, n = {}, None
    for layer, x in named.items():
        a = np.asarray(x)
        if a.ndim < 1:
            raise ConfigError(f"layer {layer!r} is a {a.ndim}-d array of shape {a.shape}; give (n, d) rows, one per sample")
        if len(a) == 0:
            raise ConfigError(f"features have 0 rows (layer {layer!r}); neighbours need at least 2 samples")
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_) or np.issubdtype(a.dtype, np.complexfloating):
            raise ConfigError(f"layer {layer!r} has dtype {a.dtype}; give real numbers (float32 is used)")
        a = a.reshape(len(a), -1)
        n = len(a) if n is None else n
        if len(a) != n:
            raise ConfigError(f"layer {layer!r} has {len(a)} rows, expected {n} (one row per sample in every layer)")
        if a.shape[1] == 0:
            raise ConfigError(f"layer {layer!r} has 0 features per sample; give at least one")
        bad = int((~np.isfinite(a)).sum()) if np.issubdtype(a.dtype, np.floating) else 0
        if bad:
            raise ConfigError(f"layer {layer!r} has {bad} non-finite values; neighbour search needs finite features")
        if np.issubdtype(a.dtype, np.floating) and a.size and float(np.abs(a).max()) > _FLOAT32_MAX:
            raise ConfigError(f"layer {layer!r} has values beyond float32's range (|x| up to {float(np.abs(a).max()):.3g}); "
                              f"rescale the features (distances are computed in float32)")
        out[layer] = a.astype(np.float32)
    if n < 2:
        raise ConfigError(f"features have {n} rows; neighbours need at least 2 samples")
    return out


def analyse(
    features: Mapping[str, np.ndarray] | Sequence[np.ndarray],
    k: int | Sequence[int] = (15, 100),
    metric: str = "l2",
    nntp_k: Sequence[int] | None = None,
    alpha: Sequence[int] = (0,),
    sample_ids: np.ndarray | None = None,
    model: str = "model",
    per_sample: str = "all",
) -> Analysis:
    """Neighbour tables and NNTS/NNTP for per-layer (n, d) feature matrices given in chain order.

    One exact search per layer at the largest k of `k` and `nntp_k`; smaller k are its prefixes.
    `sample_ids` default to 0..n-1 and must be unique; rows of every matrix are the same samples in
    the same order. NNTP defaults to the smallest k.
    """
    named = _features(features)
    choice("metric", metric, METRICS)
    n = len(next(iter(named.values())))
    ks = Ks.resolve([k] if np.isscalar(k) else list(k), None if nntp_k is None else list(nntp_k), list(alpha), n,
                    what="k")
    ids = np.arange(n, dtype=np.int64) if sample_ids is None else np.asarray(sample_ids)
    if ids.shape != (n,) or not np.issubdtype(ids.dtype, np.integer):
        raise ConfigError(f"sample_ids has shape {ids.shape} and dtype {ids.dtype}; give {n} integer ids, one per row")
    ids = ids.astype(np.int64)
    if len(np.unique(ids)) != n:
        raise ConfigError("sample_ids must be unique, one per row")
    order = np.argsort(ids, kind="stable")  # rows in ascending id order: the tie rule's id order
    ids = ids[order]
    probes, tables = [], {}
    for pos, (layer, x) in enumerate(named.items()):
        nb = knn_rows(x[order], ks.search, metric=metric)
        probes.append(ProbePoint(model, layer, pos, (x.shape[1],), x.shape[1]))
        tables[(model, layer)] = neighbour_table(nb.rows, nb.distance, ids)
    result = metric_tables(tables, probes, ids, ks, per_sample=per_sample)
    neighbours = pl.concat(
        [t.with_columns(model=pl.lit(m), layer=pl.lit(l)) for (m, l), t in tables.items()]
    ).select("model", "layer", "sample_id", "rank", "neighbour_id", "distance")
    return Analysis(neighbours=neighbours, **result._asdict())
