"""Shared fixtures: one real local Ray cluster per test session, and the reference neighbour search."""

from __future__ import annotations

import os

import numpy as np
import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray cluster, started once (starting Ray costs seconds)."""
    import ray

    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False)
    yield ray
    ray.shutdown()


def brute_force_knn(x: np.ndarray, k: int, metric: str = "l2") -> tuple[np.ndarray, np.ndarray]:
    """Independent reference: float64 distances by direct differences, self excluded by index,
    ties broken by (distance, index) through a stable sort. Returns (rows (n,k), dist (n,k))."""
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
