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

Memory is one (d_a, d_b) float64 matrix per pair, so features wider than `max_dim` are projected
by seeded Gaussian matrices R (d, max_dim) / sqrt(max_dim), E[R R^T] = I. HSIC is bilinear in
(K, L), so it stays unbiased when K and L come from independent projections: cross terms use each
layer's first projection, and a layer's own HSIC(K, K) pairs its first projection with a second,
independent one (the same R on both sides would inflate it by ~(tr K)^2 / max_dim and bias CKA
towards 0). What remains is variance: CKA is then approximate (flagged in the result).
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


@dataclass(frozen=True)
class _View:
    """One layer's features as fed to HSIC: raw, or through one random projection."""

    layer: int
    dim: int  # after projection
    projection: np.ndarray | None  # (d, dim) float32


class _Batch:
    """One pass's rows of its views side by side in one float64 buffer, view u in columns
    cols[u]: partners of a view that are neighbours in the view order are then one column range,
    one GEMM. Buffers are reused across batches (fresh large arrays cost a page fault per page)."""

    def __init__(self, views: list[_View], wanted: list[int], rows: int):
        self.cols, at = {}, 0
        for u in wanted:
            self.cols[u] = slice(at, at + views[u].dim)
            at += views[u].dim
        self.views = views
        self.buffer = np.empty((rows, at))  # (rows, sum of the views' dims) float64
        projected = [views[u].dim for u in wanted if views[u].projection is not None]
        self.projected = np.empty((rows, max(projected, default=0)), dtype=np.float32)  # one view's projection
        self.by_layer: dict[int, list[int]] = {}
        for u in wanted:
            self.by_layer.setdefault(views[u].layer, []).append(u)
        self.rows = 0

    def load(self, features: Sequence[np.ndarray], start: int, stop: int, shifts: dict[int, np.ndarray] | None) -> None:
        """Rows start:stop of every wanted view, minus its shift (None: shifts not known yet, left as read)."""
        b = self.rows = stop - start
        for layer, us in self.by_layer.items():  # a wide layer's two projections share one read
            rows = np.asarray(features[layer][start:stop], dtype=np.float32).reshape(b, -1)  # (b, d) float32
            for u in us:
                view = self.views[u]
                z = rows if view.projection is None else np.matmul(rows, view.projection, out=self.projected[:b, : view.dim])
                np.subtract(z, 0.0 if shifts is None else shifts[u], out=self.z(u))  # exact float32 -> float64

    def z(self, u: int) -> np.ndarray:
        return self.buffer[: self.rows, self.cols[u]]  # (rows, dim_u) float64 view

    def span(self, run: list[int]) -> np.ndarray:
        """The columns of views that are adjacent in this batch."""
        return self.buffer[: self.rows, self.cols[run[0]].start : self.cols[run[-1]].stop]


class _Moments:
    """Sums over samples from which the unbiased HSIC of any two views follows. The per-pair cross
    matrices sum x_i y_i^T are the large part; `_Cross` fills those of some pairs per pass."""

    def __init__(self, dims: list[int]):
        width = len(dims)
        self.n = 0
        self.cross: dict[tuple[int, int], np.ndarray] = {}  # (u, v) -> sum x_i y_i^T, once computed
        self.sums = [np.zeros(d) for d in dims]  # sum x_i
        self.by_norm = [np.zeros((d, width)) for d in dims]  # [u][:, v] = sum |y_i|^2 x_i, y from view v
        self.norm_products = np.zeros((width, width))  # sum a_i b_i
        self.norm_sums = np.zeros(width)  # sum a_i

    def add(self, z: list[np.ndarray]) -> None:
        norms = np.stack([np.einsum("ij,ij->i", zi, zi) for zi in z], axis=1)  # (B, V)
        for u, zu in enumerate(z):
            self.sums[u] += zu.sum(axis=0)
            self.by_norm[u] += zu.T @ norms
        self.norm_products += norms.T @ norms
        self.norm_sums += norms.sum(axis=0)
        self.n += len(norms)

    def hsic(self, u: int, v: int) -> float:
        n, c, s = self.n, self.cross[u, v], self.sums
        trace = float((c * c).sum()) - self.norm_products[u, v]
        k_sum = float(s[u] @ s[u]) - self.norm_sums[u]
        l_sum = float(s[v] @ s[v]) - self.norm_sums[v]
        kl_sum = float(s[u] @ c @ s[v] - s[u] @ self.by_norm[u][:, v] - s[v] @ self.by_norm[v][:, u]) + self.norm_products[u, v]
        return (trace + k_sum * l_sum / ((n - 1) * (n - 2)) - 2.0 * kl_sum / (n - 2)) / (n * (n - 3))


class _Cross:
    """The cross matrices sum x_i y_i^T of one group of pairs, accumulated batch by batch. A view's
    partners that are adjacent in the view order share one matrix (one GEMM per batch, not one per
    pair); `pairs()` hands out each pair's block."""

    def __init__(self, group: list[tuple[int, int]], dims: list[int]):
        self.runs: list[tuple[int, list[int]]] = []  # (u, adjacent partners v)
        for u, v in group:  # sorted: a view's partners are consecutive, ascending
            if self.runs and self.runs[-1][0] == u and self.runs[-1][1][-1] == v - 1:
                self.runs[-1][1].append(v)
            else:
                self.runs.append((u, [v]))
        self.sums = [np.zeros((dims[u], sum(dims[v] for v in run))) for u, run in self.runs]
        self.scratch = np.empty(max(s.size for s in self.sums))  # one batch's product, reused
        self.dims = dims

    def add(self, batch: _Batch) -> None:
        for (u, run), total in zip(self.runs, self.sums):
            product = self.scratch[: total.size].reshape(total.shape)
            total += np.matmul(batch.z(u).T, batch.span(run), out=product)

    def pairs(self) -> dict[tuple[int, int], np.ndarray]:
        out = {}
        for (u, run), total in zip(self.runs, self.sums):
            at = 0
            for v in run:
                out[u, v] = total[:, at : at + self.dims[v]]
                at += self.dims[v]
        return out


def _views(dims: list[int], max_dim: int, seed: int) -> tuple[list[_View], list[tuple[int, int]]]:
    """The views to read, and per layer (its cross-term view, the partner view of its own HSIC).
    Every layer's cross-term view comes first, in layer order, and the second projections of wide
    layers after them: a view's cross-term partners are then adjacent views."""
    first: list[_View] = []
    second: dict[int, _View] = {}
    for layer, d in enumerate(dims):
        if d <= max_dim:
            first.append(_View(layer, d, None))
            continue
        rng = np.random.default_rng([seed, layer])
        first.append(_View(layer, max_dim, (rng.standard_normal((d, max_dim)) / np.sqrt(max_dim)).astype(np.float32)))
        second[layer] = _View(layer, max_dim, (rng.standard_normal((d, max_dim)) / np.sqrt(max_dim)).astype(np.float32))
    views = first + list(second.values())
    at = {layer: len(first) + i for i, layer in enumerate(second)}
    return views, [(layer, at.get(layer, layer)) for layer in range(len(dims))]


def _pair_groups(pairs: list[tuple[int, int]], dims: list[int], budget: int) -> list[list[tuple[int, int]]]:
    """Pairs in groups whose cross matrices (float64) fit `budget` bytes together: one pass over the
    features per group, so memory stays flat however many probe points a sweep has."""
    groups, size = [[]], 0
    for u, v in pairs:
        need = 8 * dims[u] * dims[v]
        if groups[-1] and size + need > budget:
            groups.append([])
            size = 0
        groups[-1].append((u, v))
        size += need
    return groups


def _rows_per_batch(views: list[_View], wanted: list[int], raw_dims: list[int], batch: int, batch_bytes: int) -> int:
    """Rows per batch: `batch`, fewer where the pass's views side by side would pass `batch_bytes`."""
    row = sum(8 * views[u].dim for u in wanted) + 4 * max(raw_dims[views[u].layer] + views[u].dim for u in wanted)
    return min(batch, max(256, batch_bytes // row))


def linear_cka(features: Sequence[np.ndarray], batch: int = 4096, max_dim: int = 1024, seed: int = 0,
               budget: int = 1 << 30, only: set[tuple[int, int]] | None = None,
               batch_bytes: int = 512 << 20) -> CkaResult:
    """Linear CKA (unbiased HSIC) between every pair of (n, d_i) feature arrays, rows aligned; with
    `only`, just the pairs (a, b), a < b, listed there (the others are NaN, and never computed).

    Arrays may be np.memmap: they are read `batch` rows at a time (fewer where one batch of every
    view read in a pass would pass `batch_bytes`), once per group of pairs whose cross matrices fit
    `budget` bytes (only one group's are held at a time). Layer i's projections (if any) are drawn
    from np.random.default_rng([seed, i]).
    """
    n = features[0].shape[0]
    if n < 4 or any(f.shape[0] != n for f in features):
        raise ValueError(f"CKA needs >= 4 samples and the same rows in every layer; got {[f.shape for f in features]}")
    dims = [int(np.prod(f.shape[1:])) for f in features]
    views, own = _views(dims, max_dim, seed)
    width = len(features)
    asked = {(a, b) for a in range(width) for b in range(a + 1, width) if only is None or (a, b) in only}
    pairs = sorted({(own[a][0], own[b][0]) for a, b in asked} | set(own))
    view_dims = [v.dim for v in views]
    moments = _Moments(view_dims)
    shifts: dict[int, np.ndarray] = {}  # view -> its mean over the first batch (see the module docstring)
    hsic = {}  # (u, v) -> unbiased HSIC of the two views
    for g, group in enumerate(_pair_groups(pairs, view_dims, budget)):
        wanted = list(range(len(views))) if g == 0 else sorted({u for pair in group for u in pair})
        rows = _rows_per_batch(views, wanted, dims, batch, batch_bytes)
        z, cross = _Batch(views, wanted, rows), _Cross(group, view_dims)
        for start in range(0, n, rows):
            first = not shifts
            z.load(features, start, min(start + rows, n), None if first else shifts)
            if first:
                shifts = {u: z.z(u).mean(axis=0) for u in wanted}
                for u in wanted:
                    z.z(u)[...] -= shifts[u]
            if g == 0:
                moments.add([z.z(u) for u in range(len(views))])
            cross.add(z)
        moments.cross = cross.pairs()  # the first pass completed every other moment: this group's HSIC
        hsic |= {pair: moments.hsic(*pair) for pair in group}  # now, so only one group's matrices are held
        del z, cross
    h = np.full((width, width), np.nan)  # (L, L) unbiased HSIC; NaN where not asked for
    for a in range(width):
        h[a, a] = hsic[own[a]]
    for a, b in asked:
        h[a, b] = h[b, a] = hsic[own[a][0], own[b][0]]
    scale = np.sqrt(np.clip(np.diag(h), 0.0, None))  # (L,)
    with np.errstate(divide="ignore", invalid="ignore"):
        matrix = np.where(np.outer(scale, scale) > 0, h / np.outer(scale, scale), np.nan)
    projected = np.array([own[a][0] != own[a][1] for a in range(width)])
    return CkaResult(matrix, np.where(projected, max_dim, dims).astype(np.int64), projected)
