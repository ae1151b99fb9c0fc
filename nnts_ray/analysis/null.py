"""Permutation null for NNTS: how much similarity two graphs of these shapes show by chance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from nnts_ray.metrics.graph import intersections, jaccard


@dataclass(frozen=True)
class NullResult:
    observed: float  # NNTS(a, b): mean per-sample Jaccard
    null_mean: float
    null_std: float  # ddof = 1
    z: float | None  # None when the null has no spread
    p_value: float  # one-sided, (1 + #{null >= observed}) / (1 + permutations)
    permutations: int


def relabel(rows: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """The graph with every node i renamed perm[i]: edge perm[i] -> perm[j] for each edge i -> j.

    Row perm[i] of the result is perm applied to row i, i.e. K'(i) = perm(K(perm^-1(i))). The copy is
    isomorphic to the input (degrees, hubs, clusters kept) but row i now belongs to another sample.
    """
    out = np.empty_like(rows)  # (n, k)
    out[perm] = perm[rows]
    return out


def permuted_nnts(adj_a: sp.csr_array, rows_b: np.ndarray, permutations: int, rng: np.random.Generator) -> np.ndarray:
    """NNTS of graph a against `permutations` relabelled copies of graph b: (P,) float64.

    Copy t is relabel(rows_b, the t-th rng.permutation(n)). Each graph keeps its structure; only the
    sample correspondence between them is destroyed, which is exactly what NNTS claims to measure.
    """
    n, k = rows_b.shape
    return np.array(
        [jaccard(intersections(adj_a, relabel(rows_b, rng.permutation(n))), k).mean() for _ in range(permutations)]
    )


def nnts_null(adj_a: sp.csr_array, rows_b: np.ndarray, permutations: int, rng: np.random.Generator) -> NullResult:
    """Observed NNTS of (a, b) against its permutation null; needs at least 2 permutations."""
    if permutations < 2:
        raise ValueError(f"permutations={permutations}: the null needs at least 2")
    observed = float(jaccard(intersections(adj_a, rows_b), rows_b.shape[1]).mean())
    null = permuted_nnts(adj_a, rows_b, permutations, rng)  # (P,) float64
    mean, std = float(null.mean()), float(null.std(ddof=1))
    return NullResult(
        observed=observed,
        null_mean=mean,
        null_std=std,
        z=(observed - mean) / std if std > 0 else None,
        p_value=(1 + int((null >= observed).sum())) / (1 + permutations),
        permutations=permutations,
    )
