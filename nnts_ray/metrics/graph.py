"""Neighbour graphs as row positions: the primitives NNTS, NNTP and the analysis suite share.

Tables store sample ids; the arithmetic works on row positions 0..n-1 of the ascending `sample_ids`,
so ids are mapped once (`to_rows`) — by a shift when the ids are contiguous (the common case: no
search), else by a search that refuses unknown ids.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def ids_are_rows(sample_ids: np.ndarray) -> bool:
    """Sorted unique ids 0..n-1: an id is its own row, so no mapping is needed at all."""
    n = len(sample_ids)
    return n > 0 and sample_ids[0] == 0 and sample_ids[-1] == n - 1


def to_rows(ids: np.ndarray, sample_ids: np.ndarray) -> np.ndarray:
    """Neighbour (or sample) ids of any shape -> int64 row positions in `sample_ids`; refuses unknown ids."""
    ids = np.asarray(ids, dtype=np.int64)
    n = len(sample_ids)
    if n and sample_ids[-1] - sample_ids[0] == n - 1:  # contiguous ids: a shift, no search
        rows = ids - sample_ids[0]
        unknown = (rows < 0) | (rows >= n)
    else:
        rows = np.minimum(np.searchsorted(sample_ids, ids), max(n - 1, 0))
        unknown = sample_ids[rows] != ids if n else np.ones(ids.shape, bool)
    if unknown.any():
        raise ValueError(f"neighbour ids {ids[unknown][:5].tolist()} are not in sample_ids")
    return rows


def jaccard(intersection: np.ndarray, k: int) -> np.ndarray:
    """Per-sample Jaccard of two k-sets from their intersection size m: m / (2k - m), float64."""
    m = np.asarray(intersection, dtype=np.float64)
    return m / (2 * k - m)


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
