"""Independent references every correctness test checks against: brute-force k-NN (float64, stable
sort, self excluded by index), NNTS by Python sets, NNTP by walking every pair along the chain."""

from __future__ import annotations

import numpy as np


def brute_force_knn(x: np.ndarray, k: int, metric: str = "l2") -> tuple[np.ndarray, np.ndarray]:
    """(rows (n, k), dist (n, k) float64): float64 distances by direct differences, self excluded by
    index, ties broken by (distance, index) through a stable sort."""
    x = np.asarray(x, dtype=np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms > 0, norms, 1.0)
    n = len(x)
    rows = np.empty((n, k), dtype=np.int64)
    dist = np.empty((n, k), dtype=np.float64)
    for i in range(n):
        d2 = ((x - x[i]) ** 2).sum(axis=1)
        others = np.delete(np.arange(n), i)
        order = others[np.argsort(d2[others], kind="stable")][:k]  # stable: equal distances keep index order
        rows[i] = order
        dist[i] = np.sqrt(d2[order]) if metric == "l2" else d2[order] / 2
    return rows, dist


def knn_ids(x: np.ndarray, k: int, sample_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """brute_force_knn as a neighbour table holds it: (neighbour ids (n, k) int64, dist (n, k) float32)."""
    rows, dist = brute_force_knn(x, k)
    return sample_ids[rows], dist.astype(np.float32)


def assert_same_neighbours(rows, dist, ref_rows, ref_dist, rtol=1e-4, atol=1e-5):
    """Equal to the reference, except that points tied (within float error) at the k-th distance may
    be exchanged: the distance profile must match exactly, and every difference must be a tie."""
    np.testing.assert_allclose(dist, ref_dist, rtol=rtol, atol=atol)
    for i in range(len(rows)):
        if not np.array_equal(rows[i], ref_rows[i]):
            boundary = ref_dist[i, -1]
            mismatched = set(rows[i]) ^ set(ref_rows[i])
            # only near-ties may be swapped; within the set, order may differ only among near-ties
            tied = np.isclose(dist[i], boundary, rtol=rtol, atol=atol)
            assert all(np.isclose(ref_dist[i][list(ref_rows[i]).index(j)], boundary, rtol=rtol, atol=atol)
                       for j in mismatched if j in ref_rows[i]), (i, rows[i], ref_rows[i])
            assert len(mismatched) <= 2 * tied.sum(), (i, rows[i], ref_rows[i])


def jaccard_reference(sets_a: list[set], sets_b: list[set]) -> tuple[float, float, list[int]]:
    """(mean Jaccard, mean overlap m/k, per-sample intersections) of two lists of k-sets."""
    inter = [len(a & b) for a, b in zip(sets_a, sets_b)]
    k = len(sets_a[0])
    jac = [len(a & b) / len(a | b) for a, b in zip(sets_a, sets_b)]
    return float(np.mean(jac)), float(np.mean([m / k for m in inter])), inter


def undirected_edges(neighbour_sets: list[set], ids) -> set:
    """Pairs {i, j} connected by i→j or j→i (union symmetrisation), as (min, max) tuples."""
    return {(min(i, j), max(i, j)) for i, s in zip(ids, neighbour_sets) for j in s}


def runs_reference(edge_sets: list[set], alpha: int) -> dict[tuple[int, int], int]:
    """T[(first, last)] by walking every pair's connection pattern along the chain (gaps of up to
    alpha unconnected positions bridged)."""
    T: dict[tuple[int, int], int] = {}
    for pair in set().union(*edge_sets):
        on = [v for v, e in enumerate(edge_sets) if pair in e]
        start = prev = on[0]
        for v in on[1:]:
            if v - prev - 1 > alpha:
                T[(start, prev)] = T.get((start, prev), 0) + 1
                start = v
            prev = v
        T[(start, prev)] = T.get((start, prev), 0) + 1
    return T


def persistent_partners_reference(edge_sets: list[set], ids) -> dict[int, int]:
    """Per sample id, the partners connected at every probe point of the chain."""
    everywhere = set.intersection(*edge_sets)
    return {i: sum(i in pair for pair in everywhere) for i in ids}
