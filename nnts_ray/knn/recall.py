"""Recall@k of an approximate index, measured against exact search on a seeded sample of queries."""

from __future__ import annotations

import numpy as np

from nnts_ray.knn.exact import ShardIndex, candidates_needed, finalize, merge_candidates, prepare


def exact_rows(x: np.ndarray, query_rows: np.ndarray, k: int, metric: str, base_block: int = 65536) -> np.ndarray:
    """Exact k-NN rows of x[query_rows] among all rows, the database read in blocks (x may be a memmap)."""
    n = x.shape[0]
    q = prepare(x[query_rows], metric)
    kc = candidates_needed(k, n)
    parts = []
    for lo in range(0, n, base_block):
        ix = ShardIndex(prepare(x[lo : lo + base_block], metric), lo)
        parts.append(ix.search(q, k + 1, kc, refine_ranks=k))
    d2, rows = merge_candidates(parts, kc)
    return finalize(query_rows, d2, rows, k, metric).rows


def recall_at_k(approx_rows: np.ndarray, exact: np.ndarray) -> float:
    """Mean over queries of |approximate ∩ exact| / k."""
    k = exact.shape[1]
    return float(np.mean([len(set(a) & set(e)) / k for a, e in zip(approx_rows, exact)]))


def sample_queries(n: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(size, n), replace=False)).astype(np.int64)
