"""The analysis stage: every table of the suite from one run's neighbour tables (and features).

Pure in its inputs: neighbour tables and features arrive through callables, so the stage runs the
same under the pipeline, in a notebook or in a test. The caller writes each returned table as
metrics/<name>.parquet and merges `layer_stats` 1:1 into layers.parquet on (model, layer, position).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import polars as pl

from nnts_ray import schemas
from nnts_ray.analysis import tables
from nnts_ray.analysis.cka import linear_cka
from nnts_ray.analysis.graphs import adjacency, intersections, jaccard, to_rows
from nnts_ray.analysis.label_agreement import chance_agreement, label_agreement
from nnts_ray.analysis.monotonicity import monotonicity
from nnts_ray.analysis.null import nnts_null
from nnts_ray.analysis.per_sample import most_changed, per_class_means, persistent_partners
from nnts_ray.analysis.probes import Probe
from nnts_ray.analysis.twonn import twonn
from nnts_ray.config import ConfigError


@dataclass
class AnalysisInputs:
    sample_ids: np.ndarray  # (n,) int64, strictly ascending: row r of every array belongs to sample_ids[r]
    labels: np.ndarray | None  # (n,) int64 aligned with sample_ids, or None
    probes: list[Probe]  # (model, layer, position) in chain order; cross-model pairs share sample ids
    ks: list[int]
    # (model, layer, k) -> ids (n, k) int64 neighbour sample ids, dist (n, k) float32; rank ascending, self excluded
    neighbours: Callable[[str, str, int], tuple[np.ndarray, np.ndarray]]
    features: Callable[[str, str], np.ndarray | None]  # (model, layer) -> (n, d) float32 (memmap ok), or None
    per_sample: pl.DataFrame | None = None  # the core's per-sample NNTS; None: recomputed here
    metric: str = "l2"  # of the neighbour tables: l2 | cosine


@dataclass
class AnalysisSettings:
    permutations: int = 0  # permutation null for NNTS per (pair, k); 0 = off, else >= 2
    seed: int = 0
    null_max_k: int = 1000  # no permutation null above this k (cost n*k per permutation; chance is exact enough)
    twonn_discard: float = 0.1
    cka_batch: int = 4096  # rows per streaming batch
    cka_max_dim: int = 1024  # wider features are randomly projected (CKA then approximate)
    most_changed: int = 20  # samples listed per consecutive pair and k
    nntp_ks: list[int] = field(default_factory=lambda: [15])  # ks of the persistent-partner count

    def __post_init__(self) -> None:
        if self.permutations == 1 or self.permutations < 0:
            raise ConfigError(f"permutations={self.permutations}: use 0 (off) or at least 2")
        if not 0.0 <= self.twonn_discard < 1.0:
            raise ConfigError(f"twonn_discard={self.twonn_discard}: must be in [0, 1)")
        for name in ("null_max_k", "cka_batch", "cka_max_dim", "most_changed"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: must be >= 1")


def run_analysis(ctx: AnalysisInputs, cfg: AnalysisSettings) -> dict[str, pl.DataFrame]:
    """All analysis tables by name; a table whose inputs are missing is left out (no labels: no
    per_class; permutations = 0: no nnts_null; no features: no cka)."""
    _check(ctx, cfg)
    out = {"layer_stats": layer_stats(ctx, cfg)}
    per_sample, null = pairwise(ctx, cfg)
    if null is not None:
        out["nnts_null"] = null
    if ctx.labels is not None:
        out["per_class"] = per_class_means(per_sample, ctx.sample_ids, ctx.labels)
    out["most_changed"] = most_changed(per_sample, ctx.probes, cfg.most_changed)
    out["nntp_partners"] = nntp_partners(ctx, cfg)
    nnts = per_sample.group_by(tables.PAIR_KEYS).agg(pl.col("jaccard").mean())
    out["monotonicity"] = monotonicity(nnts, ctx.probes)
    cka = cka_table(ctx, cfg)
    if cka is not None:
        out["cka"] = cka
    return out


def _check(ctx: AnalysisInputs, cfg: AnalysisSettings) -> None:
    ids = ctx.sample_ids
    if ids.ndim != 1 or ids.dtype != np.int64 or np.any(np.diff(ids) <= 0):
        raise ValueError("sample_ids must be a 1-D int64 array in strictly ascending order")
    if ctx.labels is not None and ctx.labels.shape != ids.shape:
        raise ValueError(f"labels have shape {ctx.labels.shape}; expected {ids.shape}, aligned with sample_ids")
    if not ctx.probes or len({p[:2] for p in ctx.probes}) != len(ctx.probes):
        raise ValueError(f"probes must be a non-empty list of distinct (model, layer, position); got {ctx.probes}")
    for name, ks in (("ks", ctx.ks), ("nntp_ks", cfg.nntp_ks)):
        if not ks or any(not 1 <= k < len(ids) for k in ks):
            raise ValueError(f"{name}={ks}: each k must be in [1, n - 1 = {len(ids) - 1}]")


def _rows(ctx: AnalysisInputs, probe: Probe, k: int) -> np.ndarray:
    ids, _ = ctx.neighbours(probe[0], probe[1], k)
    return to_rows(ids, ctx.sample_ids)  # (n, k) int64


def layer_stats(ctx: AnalysisInputs, cfg: AnalysisSettings) -> pl.DataFrame:
    """TwoNN (from the smallest k >= 2) and kNN label agreement per k, one row per probe point."""
    schema = tables.layer_stats_schema(ctx.ks, ctx.labels is not None)
    twonn_k = next((k for k in sorted(ctx.ks) if k >= 2), None)
    chance = chance_agreement(ctx.labels) if ctx.labels is not None else None
    rows = []
    for probe in ctx.probes:
        model, layer, position = probe
        row = {"model": model, "layer": layer, "position": position, "twonn_discard": cfg.twonn_discard}
        if twonn_k is not None:
            fit = twonn(ctx.neighbours(model, layer, twonn_k)[1], cfg.twonn_discard, ctx.metric)
            row |= {"twonn_id": fit.dim, "twonn_n_used": fit.n_used, "twonn_n_zero": fit.n_zero}
        if ctx.labels is not None:
            row["label_agreement_chance"] = chance
            for k in ctx.ks:
                row[f"label_agreement_k{k}"] = float(label_agreement(_rows(ctx, probe, k), ctx.labels).mean())
        rows.append(tuple(row.get(name) for name in schema.names))
    return tables.from_rows(rows, schema)


def _cell_rng(seed: int, cell: tuple) -> np.random.Generator:
    """A generator per (pair, k) cell: reproducible whatever subset of cells a run computes."""
    return np.random.default_rng([seed, zlib.crc32("\0".join(map(str, cell)).encode())])


def pairwise(ctx: AnalysisInputs, cfg: AnalysisSettings) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Per-sample NNTS for every pair a < b in probe order (ctx.per_sample when given) and the
    permutation null per (pair, k) when asked for. Holds two neighbour tables at a time."""
    frames, null_rows = [], []
    for k in ctx.ks:
        with_null = 0 < cfg.permutations and k <= cfg.null_max_k
        if ctx.per_sample is not None and not with_null:
            continue
        for i, a in enumerate(ctx.probes[:-1]):
            adj_a = adjacency(_rows(ctx, a, k))
            for b in ctx.probes[i + 1 :]:
                rows_b = _rows(ctx, b, k)  # (n, k) int64
                cell = (a[0], a[1], b[0], b[1], k)
                if ctx.per_sample is None:
                    frames.append(_per_sample_frame(ctx.sample_ids, cell, intersections(adj_a, rows_b)))
                if with_null:
                    r = nnts_null(adj_a, rows_b, cfg.permutations, _cell_rng(cfg.seed, cell))
                    null_rows.append(cell + (r.observed, r.null_mean, r.null_std, r.z, r.p_value, r.permutations))
    if ctx.per_sample is not None:
        per_sample = ctx.per_sample
    elif frames:
        per_sample = tables.conform(pl.concat(frames), schemas.PER_SAMPLE)
    else:  # a single probe point: no pairs
        per_sample = pl.from_arrow(schemas.PER_SAMPLE.empty_table())
    return per_sample, tables.from_rows(null_rows, tables.NNTS_NULL) if cfg.permutations else None


def _per_sample_frame(sample_ids: np.ndarray, cell: tuple, intersection: np.ndarray) -> pl.DataFrame:
    df = pl.DataFrame({"sample_id": sample_ids, "intersection": intersection, "jaccard": jaccard(intersection, cell[-1])})
    return df.with_columns(pl.lit(v).alias(name) for name, v in zip(tables.PAIR_KEYS, cell))


def nntp_partners(ctx: AnalysisInputs, cfg: AnalysisSettings) -> pl.DataFrame:
    """Per model and k in cfg.nntp_ks, each sample's partners connected at every probe point (alpha = 0)."""
    frames = []
    for model in dict.fromkeys(p[0] for p in ctx.probes):
        chain = [p for p in ctx.probes if p[0] == model]
        for k in cfg.nntp_ks:
            count = persistent_partners([_rows(ctx, p, k) for p in chain])  # (n,) int64
            columns = {"model": [model] * len(count), "k": np.full(len(count), k), "sample_id": ctx.sample_ids,
                       "persistent_partners": count}
            frames.append(tables.frame(columns, tables.NNTP_PARTNERS))
    return pl.concat(frames)


def cka_table(ctx: AnalysisInputs, cfg: AnalysisSettings) -> pl.DataFrame | None:
    """Linear CKA for every pair a <= b of probe points whose features are available."""
    available = [(p, f) for p in ctx.probes if (f := ctx.features(p[0], p[1])) is not None]
    if not available:
        return None
    result = linear_cka([f for _, f in available], cfg.cka_batch, cfg.cka_max_dim, cfg.seed)
    rows = [
        (pa[0], pa[1], pb[0], pb[1], result.matrix[i, j] if np.isfinite(result.matrix[i, j]) else None,
         result.dims[i], result.dims[j], bool(result.projected[i] or result.projected[j]))
        for i, (pa, _) in enumerate(available)
        for j, (pb, _) in enumerate(available)
        if i <= j
    ]
    return tables.from_rows(rows, tables.CKA)
