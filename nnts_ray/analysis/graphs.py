"""Neighbour tables as row positions and sparse adjacency: the primitives every pairwise statistic uses.

Tables store sample ids; the arithmetic here works on row positions 0..n-1 of the ascending
`sample_ids`, so ids are always mapped first (`to_rows`) and never assumed to be 0..n-1.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def to_rows(ids: np.ndarray, sample_ids: np.ndarray) -> np.ndarray:
    """(n, k) neighbour sample ids -> (n, k) int64 row positions in `sample_ids`; refuse unknown ids."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim != 2 or ids.shape[0] != len(sample_ids):
        raise ValueError(f"neighbour ids must be (n={len(sample_ids)}, k); got shape {ids.shape}")
    n = len(sample_ids)
    if sample_ids[-1] - sample_ids[0] == n - 1:  # contiguous ids: a shift, no search
        rows = ids - sample_ids[0]  # (n, k) int64
        unknown = (rows < 0) | (rows >= n)  # (n, k) bool
    else:
        rows = np.minimum(np.searchsorted(sample_ids, ids), n - 1)
        unknown = sample_ids[rows] != ids
    if unknown.any():
        raise ValueError(f"neighbour ids {ids[unknown][:5].tolist()} are not in sample_ids")
    return rows


def adjacency(rows: np.ndarray) -> sp.csr_array:
    """(n, k) row positions -> (n, n) directed 0/1 adjacency; elementwise products intersect rows in C."""
    n, k = rows.shape
    index = np.int32 if max(n, n * k) < np.iinfo(np.int32).max else np.int64
    indptr = np.arange(0, n * k + 1, k, dtype=index)  # (n + 1,)
    return sp.csr_array((np.ones(n * k, np.int8), rows.astype(index).ravel(), indptr), shape=(n, n))


def intersections(adj_a: sp.csr_array, rows_b: np.ndarray) -> np.ndarray:
    """|K_a(i) ∩ K_b(i)| for every row i: (n,) int64. Rows hold distinct neighbours, so the count of
    the elementwise product's stored entries per row is the intersection size."""
    both = adj_a.multiply(adjacency(rows_b))
    return np.diff(both.indptr).astype(np.int64)


def jaccard(intersection: np.ndarray, k: int) -> np.ndarray:
    """Per-sample Jaccard of two k-sets from their intersection size m: m / (2k - m), float64."""
    m = intersection.astype(np.float64)
    return m / (2 * k - m)


def connections(rows: np.ndarray) -> sp.csr_array:
    """(n, n) symmetric bool pattern of connected pairs: {i, j} with i -> j or j -> i (union symmetrisation)."""
    directed = adjacency(rows)
    return (directed + directed.T).astype(bool).tocsr()
