"""NNTP — maximal runs of connected neighbour pairs along one model's chain of probe points (RUN_DIRECTORY.md).

A pair {i, j} is connected at probe point v when i→j or j→i is in v's k-NN graph. A run is a maximal
stretch of positions a..b at which the pair is connected, where gaps of up to `alpha` unconnected
positions are bridged (alpha = 0: connected at every point from a to b). T[a, b] counts runs that
start at a and end at b. Pairs are processed in blocks of their smaller id to bound memory.
The pairs connected at every probe point (T[first, last] for alpha = 0) are also counted per sample:
each sample's persistent partners.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from nnts_ray.metrics.graph import ids_are_rows, to_rows


class Nntp(NamedTuple):
    runs: pl.DataFrame  # first, last, alpha, n_pairs (positions)
    edges: pl.DataFrame  # position, n_edges = |E_v|
    partners: np.ndarray  # (n,) int64: partners connected at every probe point, per sample row


def connected_pairs(chain: list[tuple[int, pl.LazyFrame]], sample_ids: np.ndarray, k: int, lo: int,
                    hi: int) -> tuple[np.ndarray, int]:
    """Undirected connected pairs {i, j} with lo ≤ min(i, j) ≤ hi at every position of `chain`
    ((position, neighbour rows) per probe point, each scanned on its own), as sorted unique int64
    codes (row(i)·n + row(j))·P + position with row() the index in `sample_ids`, i < j, P = max
    position + 1: one sort orders them by pair, then position, and drops the i→j / j→i duplicate.
    Returns (codes, P); no rows gives (empty, 0)."""
    queries = [
        frame.filter(
            (pl.col("rank") < k)
            & (pl.col("sample_id").is_between(lo, hi) | pl.col("neighbour_id").is_between(lo, hi))
        )
        .select(i=pl.min_horizontal("sample_id", "neighbour_id"), j=pl.max_horizontal("sample_id", "neighbour_id"))
        .filter(pl.col("i").is_between(lo, hi))
        for _, frame in chain
    ]
    got = pl.collect_all(queries)
    rows = pl.concat(got).with_columns(
        position=pl.Series(np.repeat([p for p, _ in chain], [g.height for g in got]), dtype=pl.Int64))
    n = len(sample_ids)
    pos, i, j = (rows[c].to_numpy() for c in ("position", "i", "j"))
    if not ids_are_rows(sample_ids):
        i, j = to_rows(i, sample_ids), to_rows(j, sample_ids)
    if len(pos) == 0:
        return np.zeros(0, np.int64), 0
    positions = int(pos.max()) + 1
    if n * n * positions >= 1 << 62:
        raise ValueError(f"NNTP codes would overflow int64 for n={n} and {positions} positions")
    codes = pl.Series((i.astype(np.int64) * n + j) * positions + pos).sort().to_numpy()  # Polars: parallel sort
    return codes[np.r_[True, codes[1:] != codes[:-1]]], positions


def run_counts(codes: np.ndarray, positions: int, alpha: int) -> pl.DataFrame:
    """(first, last, n_pairs): maximal runs of each pair, gaps of up to alpha positions bridged,
    from the sorted codes of `connected_pairs` (pair-major, then position)."""
    pair, pos = codes // positions, codes % positions
    new = np.r_[True, (pair[1:] != pair[:-1]) | (pos[1:] - pos[:-1] > alpha + 1)]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:] - 1, len(codes) - 1]
    cells = np.bincount(pos[starts] * positions + pos[ends], minlength=positions * positions)
    first, last = np.divmod(np.flatnonzero(cells), positions)
    return pl.DataFrame({"first": first.astype(np.int64), "last": last.astype(np.int64),
                         "n_pairs": cells[cells > 0].astype(np.int64)})


def persistent(codes: np.ndarray, positions: int, n: int, points: int) -> np.ndarray:
    """(n,) int64: for each sample row, its partners connected at every one of the chain's `points`
    probe points (codes are unique per (pair, position), so such a pair holds `points` codes)."""
    pair, count = np.unique(codes // positions, return_counts=True)
    kept = pair[count == points]
    return np.bincount(kept // n, minlength=n) + np.bincount(kept % n, minlength=n)


def nntp(
    chain: list[tuple[int, pl.LazyFrame]],
    sample_ids: np.ndarray,
    k: int,
    alphas: list[int],
    pair_block: int = 20000,
) -> Nntp:
    """Runs, |E_v| and persistent partners of one model's chain of (position, neighbour rows)."""
    runs, edges = [], []
    sample_ids = np.asarray(sample_ids, dtype=np.int64)
    n = len(sample_ids)
    partners = np.zeros(n, np.int64)
    for s in range(0, n, pair_block):
        lo, hi = int(sample_ids[s]), int(sample_ids[min(s + pair_block, n) - 1])
        codes, positions = connected_pairs(chain, sample_ids, k, lo, hi)
        if not len(codes):
            continue
        per_position = np.bincount(codes % positions, minlength=positions)
        edges.append(pl.DataFrame({"position": np.flatnonzero(per_position).astype(np.int64),
                                   "n_edges": per_position[per_position > 0].astype(np.int64)}))
        partners += persistent(codes, positions, n, len(chain))
        for alpha in alphas:
            runs.append(run_counts(codes, positions, alpha).with_columns(alpha=pl.lit(alpha, pl.Int64)))
    empty_runs = {"first": pl.Int64, "last": pl.Int64, "alpha": pl.Int64, "n_pairs": pl.Int64}
    run_table = (
        pl.concat(runs).group_by("first", "last", "alpha").agg(pl.col("n_pairs").sum()).sort("alpha", "first", "last")
        if runs else pl.DataFrame(schema=empty_runs)
    )
    edge_table = (pl.concat(edges).group_by("position").agg(pl.col("n_edges").sum()).sort("position")
                  if edges else pl.DataFrame(schema={"position": pl.Int64, "n_edges": pl.Int64}))
    return Nntp(run_table, edge_table, partners)


def check_identity(runs: pl.DataFrame, edges: pl.DataFrame) -> None:
    """For alpha = 0: every connected pair at v lies in exactly one run covering v, so
    Σ_{a ≤ v ≤ b} T[a, b] = |E_v|. An internal invariant: a failure is a bug, not bad input."""
    t = runs.filter(pl.col("alpha") == 0)
    for v, n_edges in edges.iter_rows():
        covered = t.filter((pl.col("first") <= v) & (pl.col("last") >= v))["n_pairs"].sum()
        assert covered == n_edges, f"NNTP identity broken at position {v}: {covered} != {n_edges}"
