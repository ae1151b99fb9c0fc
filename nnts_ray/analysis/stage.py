"""The analysis suite as one step: every table it adds, from one run's neighbour tables, features and
the core's NNTS tables.

Pure in its inputs: neighbour tables and features arrive through callables, so it runs the same under
the pipeline, in a notebook or in a test. The caller writes each returned table as
metrics/<name>.parquet and merges `layer_stats` 1:1 into layers.parquet on (model, layer, position).
Settings are validated where the configuration is (nnts_ray.config); here they are plain values.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import polars as pl

from nnts_ray import schemas
from nnts_ray.analysis.cka import linear_cka
from nnts_ray.analysis.embedding import pca2
from nnts_ray.analysis.label_agreement import chance_agreement, label_agreement
from nnts_ray.analysis.monotonicity import monotonicity
from nnts_ray.analysis.null import nnts_null
from nnts_ray.analysis.per_sample import most_changed, per_class_means
from nnts_ray.analysis.twonn import twonn
from nnts_ray.config import MetricsConfig
from nnts_ray.metrics.graph import adjacency, to_rows
from nnts_ray.plan import ProbePoint


@dataclass
class AnalysisInputs:
    sample_ids: np.ndarray  # (n,) int64, strictly ascending: row r of every array belongs to sample_ids[r]
    labels: np.ndarray | None  # (n,) int64 aligned with sample_ids, or None
    probes: list[ProbePoint]  # in chain order; cross-model pairs share sample ids
    ks: list[int]  # the NNTS k to analyse
    # (probe, k) -> ids (n, k) int64 neighbour sample ids, dist (n, k) float32; rank ascending, self excluded
    neighbours: Callable[[ProbePoint, int], tuple[np.ndarray, np.ndarray]]
    features: Callable[[ProbePoint], np.ndarray | None]  # (n, d) float32 (memmap ok), or None
    nnts: pl.DataFrame  # the core's NNTS table (schemas.NNTS)
    per_sample: pl.DataFrame  # the core's per-sample NNTS (schemas.PER_SAMPLE), the pairs it keeps
    metric: str = "l2"  # of the neighbour tables: l2 | cosine


@dataclass(frozen=True)
class AnalysisSettings:
    permutations: int = 0  # permutation null for NNTS per (pair, k); 0 = off, else >= 2
    seed: int = 0
    null_max_k: int = 1000  # no permutation null above this k (cost n*k per permutation; chance is exact enough)
    twonn_discard: float = 0.1
    cka: bool = True
    cka_pairs: str = "within"  # pairs within a model, or "all" (cross-model pairs too)
    cka_batch: int = 4096  # rows per streaming batch
    cka_max_dim: int = 1024  # wider features are randomly projected (CKA then approximate)
    most_changed: int = 20  # samples listed per consecutive pair and k
    embedding: bool = True  # 2-D PCA map per probe point

    @staticmethod
    def from_config(m: MetricsConfig) -> "AnalysisSettings":
        return AnalysisSettings(permutations=m.permutations, seed=m.seed, null_max_k=m.null_max_k,
                                twonn_discard=m.twonn_discard, cka=m.cka, cka_pairs=m.cka_pairs, cka_batch=m.cka_batch,
                                cka_max_dim=m.cka_max_dim, most_changed=m.most_changed, embedding=m.embedding)


ANALYSIS_STEPS = 5  # ticks of run_analysis: embedding, layer statistics, null, per-sample views, CKA


def run_analysis(ctx: AnalysisInputs, cfg: AnalysisSettings,
                 tick: Callable[[str], None] = lambda note: None) -> dict[str, pl.DataFrame]:
    """All analysis tables by name; a table whose inputs are missing is left out (no labels: no
    per_class; permutations = 0: no nnts_null; no features: no cka and no embedding)."""
    _check(ctx)
    embedding = embedding_tables(ctx) if cfg.embedding else None
    tick("2-D maps")
    out = {"layer_stats": layer_stats(ctx, cfg, embedding[1] if embedding else None)}
    tick("intrinsic dimension, label agreement")
    if cfg.permutations:
        out["nnts_null"] = null_table(ctx, cfg)
    tick("permutation null")
    if ctx.labels is not None:
        out["per_class"] = per_class_means(ctx.per_sample, ctx.sample_ids, ctx.labels)
    out["most_changed"] = most_changed(ctx.per_sample, ctx.probes, cfg.most_changed)
    out["monotonicity"] = monotonicity(ctx.nnts.filter(pl.col("k").is_in(ctx.ks)), ctx.probes)
    tick("per class, most changed, monotonicity")
    cka = cka_table(ctx, cfg) if cfg.cka else None
    if cka is not None:
        out["cka"] = cka
    tick("CKA")
    if embedding is not None:
        out["embedding"] = embedding[0]
    return out


def _check(ctx: AnalysisInputs) -> None:
    """Internal invariants of the inputs (the pipeline and tests build them; users never do)."""
    ids = ctx.sample_ids
    assert ids.ndim == 1 and ids.dtype == np.int64 and np.all(np.diff(ids) > 0), "sample_ids: int64, ascending"
    assert ctx.labels is None or ctx.labels.shape == ids.shape, "labels aligned with sample_ids"
    assert ctx.probes and len({p.key for p in ctx.probes}) == len(ctx.probes), "distinct probe points"
    assert all(1 <= k < len(ids) for k in ctx.ks), f"ks={ctx.ks} within [1, n - 1]"


def _rows(ctx: AnalysisInputs, probe: ProbePoint, k: int) -> np.ndarray:
    return to_rows(ctx.neighbours(probe, k)[0], ctx.sample_ids)  # (n, k) int64


def layer_stats(ctx: AnalysisInputs, cfg: AnalysisSettings, explained: dict | None) -> pl.DataFrame:
    """TwoNN (from the smallest k >= 2), kNN label agreement per k and the 2-D map's explained
    variance, one row per probe point."""
    schema = schemas.layer_stats_schema(ctx.ks, ctx.labels is not None)
    twonn_k = next((k for k in sorted(ctx.ks) if k >= 2), None)
    chance = chance_agreement(ctx.labels) if ctx.labels is not None else None
    rows = []
    for probe in ctx.probes:
        row = {"model": probe.model, "layer": probe.layer, "position": probe.position,
               "twonn_discard": cfg.twonn_discard, "pca_explained": (explained or {}).get(probe.key)}
        if twonn_k is not None:
            fit = twonn(ctx.neighbours(probe, twonn_k)[1], cfg.twonn_discard, ctx.metric)
            row |= {"twonn_id": fit.dim, "twonn_n_used": fit.n_used, "twonn_n_zero": fit.n_zero}
        if ctx.labels is not None:
            row["label_agreement_chance"] = chance
            for k in ctx.ks:
                row[f"label_agreement_k{k}"] = float(label_agreement(_rows(ctx, probe, k), ctx.labels).mean())
        rows.append(tuple(row.get(name) for name in schema.names))
    return schemas.from_rows(rows, schema)


def _cell_rng(seed: int, cell: tuple) -> np.random.Generator:
    """A generator per (pair, k) cell: reproducible whatever subset of cells a run computes."""
    return np.random.default_rng([seed, zlib.crc32("\0".join(map(str, cell)).encode())])


def null_table(ctx: AnalysisInputs, cfg: AnalysisSettings) -> pl.DataFrame:
    """The permutation null of NNTS for every pair a < b and k ≤ null_max_k. Holds two graphs at a time."""
    rows = []
    for k in (k for k in ctx.ks if k <= cfg.null_max_k):
        for i, a in enumerate(ctx.probes[:-1]):
            adj_a = adjacency(_rows(ctx, a, k))
            for b in ctx.probes[i + 1 :]:
                cell = (a.model, a.layer, b.model, b.layer, k)
                r = nnts_null(adj_a, _rows(ctx, b, k), cfg.permutations, _cell_rng(cfg.seed, cell))
                rows.append(cell + (r.observed, r.null_mean, r.null_std, r.z, r.p_value, r.permutations))
    return schemas.from_rows(rows, schemas.NNTS_NULL)


def cka_table(ctx: AnalysisInputs, cfg: AnalysisSettings) -> pl.DataFrame | None:
    """Linear CKA for pairs a <= b of probe points whose features are available: within each model,
    or every pair with `cka_pairs="all"`."""
    available = [(p, f) for p in ctx.probes if (f := ctx.features(p)) is not None]
    if not available:
        return None
    wanted = {(i, j) for i, (pa, _) in enumerate(available) for j, (pb, _) in enumerate(available)
              if i < j and (cfg.cka_pairs == "all" or pa.model == pb.model)}
    result = linear_cka([f for _, f in available], cfg.cka_batch, cfg.cka_max_dim, cfg.seed, only=wanted)
    rows = [
        (pa.model, pa.layer, pb.model, pb.layer, result.matrix[i, j] if np.isfinite(result.matrix[i, j]) else None,
         result.dims[i], result.dims[j], bool(result.projected[i] or result.projected[j]))
        for i, (pa, _) in enumerate(available)
        for j, (pb, _) in enumerate(available)
        if i == j or (i, j) in wanted
    ]
    return schemas.from_rows(rows, schemas.CKA)


def embedding_tables(ctx: AnalysisInputs) -> tuple[pl.DataFrame, dict] | None:
    """(the 2-D map of every probe point with features, {probe key: explained variance share})."""
    frames, explained = [], {}
    for p in ctx.probes:
        x = ctx.features(p)
        if x is None:
            continue
        fit = pca2(x)
        explained[p.key] = fit.explained
        n = len(ctx.sample_ids)
        frames.append(schemas.frame({"model": [p.model] * n, "layer": [p.layer] * n, "sample_id": ctx.sample_ids,
                                     "x": fit.coords[:, 0], "y": fit.coords[:, 1]}, schemas.EMBEDDING))
    return (pl.concat(frames), explained) if frames else None
