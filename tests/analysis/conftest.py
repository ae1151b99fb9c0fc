"""Shared references for the analysis tests: exact neighbours from scikit-learn (brute force)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

Knn = Callable[[np.ndarray, int, np.ndarray], tuple[np.ndarray, np.ndarray]]


def exact_knn(x: np.ndarray, k: int, sample_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids (n, k) int64, dist (n, k) float32) with self excluded by index, not by position.

    Distances are recomputed directly in float64, so exact duplicates sit at exactly 0 (as after the
    neighbour stage's float64 re-scoring), not at sklearn's ||x||^2 + ||y||^2 - 2 x.y round-off.
    """
    n = len(x)
    idx = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(x).kneighbors(x, return_distance=False)
    keep = idx != np.arange(n)[:, None]  # (n, k + 1) bool
    rows = np.stack([r[m][:k] for r, m in zip(idx, keep)])  # (n, k) positions
    dist = np.linalg.norm(x[:, None, :].astype(np.float64) - x[rows], axis=2)  # (n, k) float64
    return sample_ids[rows], dist.astype(np.float32)


@pytest.fixture(scope="session")
def knn() -> Knn:
    return exact_knn


@pytest.fixture(scope="session")
def sample_ids() -> Callable[[int], np.ndarray]:
    """Ascending ids that are deliberately not 0..n-1, so every mapping through sample_ids is exercised."""
    return lambda n: (1000 + 7 * np.arange(n)).astype(np.int64)


def random_rows(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """(n, k) random neighbour rows: k distinct positions per row, never the row itself."""
    rows = np.argsort(rng.random((n, n - 1)), axis=1)[:, :k]  # (n, k) in 0..n-2
    return rows + (rows >= np.arange(n)[:, None])  # skip self


@pytest.fixture(scope="session")
def random_graph() -> Callable[[np.random.Generator, int, int], np.ndarray]:
    return random_rows
