"""NNTP — maximal runs of connected neighbour pairs along one model's chain of probe points (SPEC §1).

A pair {i, j} is connected at probe point v when i→j or j→i is in v's k-NN graph. A run is a maximal
stretch of positions a..b at which the pair is connected, where gaps of up to `alpha` unconnected
positions are bridged (alpha = 0: connected at every point from a to b). T[a, b] counts runs that
start at a and end at b. Pairs are processed in blocks of their smaller id to bound memory.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def connected_pairs(neighbours: pl.LazyFrame, k: int, lo: int, hi: int) -> pl.LazyFrame:
    """Undirected connected pairs (i < j, position) with lo ≤ i ≤ hi, from rows `(position,
    sample_id, rank, neighbour_id)`; each pair once per position (union symmetrisation)."""
    edges = neighbours.filter(
        (pl.col("rank") < k)
        & (pl.col("sample_id").is_between(lo, hi) | pl.col("neighbour_id").is_between(lo, hi))
    )
    return (
        edges.select(
            "position",
            i=pl.min_horizontal("sample_id", "neighbour_id"),
            j=pl.max_horizontal("sample_id", "neighbour_id"),
        )
        .filter(pl.col("i").is_between(lo, hi))
        .unique()
    )


def run_counts(pairs: pl.LazyFrame, alpha: int) -> pl.LazyFrame:
    """(first, last, n_pairs): maximal runs of each pair, gaps of up to alpha positions bridged."""
    step = pl.col("position").diff().over("i", "j", order_by="position")
    return (
        pairs.sort("i", "j", "position")
        .with_columns(new_run=step.is_null() | (step > alpha + 1))
        .with_columns(run=pl.col("new_run").cum_sum())
        .group_by("run")
        .agg(first=pl.col("position").min(), last=pl.col("position").max())
        .group_by("first", "last")
        .agg(n_pairs=pl.len().cast(pl.Int64))
    )


def nntp(
    neighbours: pl.LazyFrame,
    sample_ids: np.ndarray,
    k: int,
    alphas: list[int],
    pair_block: int = 20000,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(runs, edges) for one model: runs = (first, last, alpha, n_pairs) over positions;
    edges = (position, n_edges) = |E_v|, the undirected connected pairs at each probe point."""
    runs, edges = [], []
    sample_ids = np.asarray(sample_ids, dtype=np.int64)
    for s in range(0, len(sample_ids), pair_block):
        lo, hi = int(sample_ids[s]), int(sample_ids[min(s + pair_block, len(sample_ids)) - 1])
        pairs = connected_pairs(neighbours, k, lo, hi).collect().lazy()
        edges.append(pairs.group_by("position").agg(n_edges=pl.len().cast(pl.Int64)).collect())
        for alpha in alphas:
            runs.append(run_counts(pairs, alpha).with_columns(alpha=pl.lit(alpha, pl.Int64)).collect())
    run_table = (
        pl.concat(runs).group_by("first", "last", "alpha").agg(pl.col("n_pairs").sum()).sort("alpha", "first", "last")
    )
    edge_table = pl.concat(edges).group_by("position").agg(pl.col("n_edges").sum()).sort("position")
    return run_table, edge_table


def check_identity(runs: pl.DataFrame, edges: pl.DataFrame) -> None:
    """For alpha = 0: every connected pair at v lies in exactly one run covering v, so
    Σ_{a ≤ v ≤ b} T[a, b] = |E_v|. An internal invariant: a failure is a bug, not bad input."""
    t = runs.filter(pl.col("alpha") == 0)
    for v, n_edges in edges.iter_rows():
        covered = t.filter((pl.col("first") <= v) & (pl.col("last") >= v))["n_pairs"].sum()
        assert covered == n_edges, f"NNTP identity broken at position {v}: {covered} != {n_edges}"
