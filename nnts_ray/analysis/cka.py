"""Linear CKA between probe points, streamed over sample batches.

CKA(X, Y) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with K = X X^T, L = Y Y^T (Kornblith et al.
2019) and the unbiased HSIC estimator of Song et al. 2012 (as in Nguyen et al. 2020):
  HSIC = [tr(K~L~) + 1^T K~ 1 * 1^T L~ 1 / ((n-1)(n-2)) - 2/(n-2) * 1^T K~ L~ 1] / (n (n-3)),
K~, L~ being K, L with zero diagonal. Every term is a function of sums over samples, so one pass
over row batches suffices and no n x n matrix is formed (a_i = |x_i|^2, b_i = |y_i|^2, C = X^T Y):
  tr(K~L~)   = |C|_F^2 - sum a_i b_i
  1^T K~ 1   = |sum x_i|^2 - sum a_i
  1^T K~L~ 1 = sum_i (x_i.s_x - a_i)(y_i.s_y - b_i) = s_x^T C s_y - s_x.(X^T b) - s_y.(Y^T a) + sum a_i b_i.
The estimator is exactly invariant to shifting all x_i by one vector (U-centring removes it), so
features are shifted by their first batch's mean to keep the float64 sums from cancelling.
Memory: one (d_a, d_b) float64 matrix per pair a <= b; features wider than `max_dim` are first
multiplied by a seeded Gaussian projection (d, max_dim) / sqrt(max_dim), which preserves inner
products only in expectation: CKA is then approximate (flagged in the result).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class CkaResult:
    matrix: np.ndarray  # (L, L) float64, symmetric; NaN where a side has no variance
    dims: np.ndarray  # (L,) int64, feature dims used
    projected: np.ndarray  # (L,) bool, randomly projected to max_dim


def _projection(d: int, max_dim: int, rng: np.random.Generator) -> np.ndarray | None:
    if d <= max_dim:
        return None
    return (rng.standard_normal((d, max_dim)) / np.sqrt(max_dim)).astype(np.float32)  # (d, m) float32


def _read(features: np.ndarray, start: int, stop: int, projection: np.ndarray | None) -> np.ndarray:
    rows = np.asarray(features[start:stop], dtype=np.float32).reshape(stop - start, -1)  # (B, d) float32
    return (rows if projection is None else rows @ projection).astype(np.float64)  # (B, d') float64


def linear_cka(features: Sequence[np.ndarray], batch: int = 4096, max_dim: int = 1024, seed: int = 0) -> CkaResult:
    """Linear CKA (unbiased HSIC) between every pair of (n, d_i) feature arrays, rows aligned.

    Arrays may be np.memmap: they are read `batch` rows at a time. Layer i's projection (if any)
    is drawn from np.random.default_rng([seed, i]).
    """
    n = features[0].shape[0]
    if n < 4 or any(f.shape[0] != n for f in features):
        raise ValueError(f"CKA needs >= 4 samples and the same rows in every layer; got {[f.shape for f in features]}")
    width = len(features)
    dims_in = [int(np.prod(f.shape[1:])) for f in features]
    projections = [_projection(d, max_dim, np.random.default_rng([seed, i])) for i, d in enumerate(dims_in)]
    dims = [d if p is None else max_dim for d, p in zip(dims_in, projections)]
    pairs = [(a, b) for a in range(width) for b in range(a, width)]
    cross = {(a, b): np.zeros((dims[a], dims[b])) for a, b in pairs}  # sum x_i y_i^T
    sums = [np.zeros(d) for d in dims]  # sum x_i
    by_norm = [np.zeros((d, width)) for d in dims]  # [a][:, b] = sum |y_i|^2 x_i with y from layer b
    norm_products = np.zeros((width, width))  # sum a_i b_i
    norm_sums = np.zeros(width)  # sum a_i
    shifts: list[np.ndarray] = []
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        z = [_read(f, start, stop, p) for f, p in zip(features, projections)]  # each (B, d_i) float64
        shifts = shifts or [zi.mean(axis=0) for zi in z]
        z = [zi - s for zi, s in zip(z, shifts)]
        norms = np.stack([np.einsum("ij,ij->i", zi, zi) for zi in z], axis=1)  # (B, L)
        for a, b in pairs:
            cross[a, b] += z[a].T @ z[b]
        for a in range(width):
            sums[a] += z[a].sum(axis=0)
            by_norm[a] += z[a].T @ norms
        norm_products += norms.T @ norms
        norm_sums += norms.sum(axis=0)

    def hsic(a: int, b: int) -> float:
        c = cross[a, b]
        trace = float((c * c).sum()) - norm_products[a, b]
        k_sum = float(sums[a] @ sums[a]) - norm_sums[a]
        l_sum = float(sums[b] @ sums[b]) - norm_sums[b]
        kl_sum = float(sums[a] @ c @ sums[b] - sums[a] @ by_norm[a][:, b] - sums[b] @ by_norm[b][:, a]) + norm_products[a, b]
        return (trace + k_sum * l_sum / ((n - 1) * (n - 2)) - 2.0 * kl_sum / (n - 2)) / (n * (n - 3))

    h = np.zeros((width, width))  # (L, L) unbiased HSIC
    for a, b in pairs:
        h[a, b] = h[b, a] = hsic(a, b)
    scale = np.sqrt(np.clip(np.diag(h), 0.0, None))  # (L,)
    with np.errstate(divide="ignore", invalid="ignore"):
        matrix = np.where(np.outer(scale, scale) > 0, h / np.outer(scale, scale), np.nan)
    return CkaResult(matrix, np.array(dims, dtype=np.int64), np.array([p is not None for p in projections]))
