"""Recall@k of an approximate index, measured against exact search on a seeded sample of queries."""

from __future__ import annotations

import numpy as np

from nnts_ray.knn.exact import ShardIndex, neighbours_of, prepare, shard_candidates


def exact_rows(x: np.ndarray, query_rows: np.ndarray, k: int, metric: str, base_block: int = 65536) -> np.ndarray:
    """Exact k-NN rows of x[query_rows] among all rows, the database read in blocks (x may be a memmap)."""
    n = x.shape[0]
    q = prepare(x[query_rows], metric)
    parts = [shard_candidates(ShardIndex(prepare(x[lo : lo + base_block], metric), lo), q, k, n, refine_ranks=k)
             for lo in range(0, n, base_block)]
    return neighbours_of(parts, query_rows, k, n, metric).rows


def recall_at_k(approx_rows: np.ndarray, exact: np.ndarray) -> float:
    """Mean over queries of |approximate ∩ exact| / k."""
    k = exact.shape[1]
    return float(np.mean([len(set(a) & set(e)) / k for a, e in zip(approx_rows, exact)]))


def sample_queries(n: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(size, n), replace=False)).astype(np.int64)
