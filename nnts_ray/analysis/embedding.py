"""A 2-D map of each probe point for viewers: its samples on the first two principal components.

Features may be (n, d) memmaps far larger than memory allows to centre and copy, so the components
come from subspace iteration on the covariance (Halko, Martinsson & Tropp 2011, with oversampling),
streamed over row batches: each pass forms Y = X B and X^T Y from one read of each batch, the
Rayleigh-Ritz step comes from Y^T Y (p × p), and nothing d × d is ever formed. Centred rows are
float32 in those products: a 2-D picture needs the axes to ~1e-3, and the passes are bound by
memory traffic, which float32 halves.
The components are fitted on at most `FIT_ROWS` evenly spaced rows (plenty for a 2-D picture); every
row is then projected.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

_CACHE_BYTES = 1 << 29  # centred float32 rows kept between passes up to this size (else re-read each pass)
_SUB_ROWS = 256  # rows multiplied twice per pass (X B, then X^T Y) while they are in cache
_OVERSAMPLE = 30  # with 6 power iterations: top-2 subspace of flat spectra to ~1e-3 (vs exact PCA)
_POWER_ITERATIONS = 6
FIT_ROWS = 20000


class Pca2(NamedTuple):
    coords: np.ndarray  # (n, 2) float32: each sample on the first two components
    explained: float  # share of the total variance those two components hold (nan when there is none)


def _batches(x: np.ndarray, batch: int, mean: np.ndarray | None = None):
    """(start row, (b, d) rows) over x in row batches: float64 as read, or centred on `mean` and
    then float32."""
    for s in range(0, x.shape[0], batch):
        rows = np.asarray(x[s : s + batch], dtype=np.float64)
        yield s, rows if mean is None else (rows - mean).astype(np.float32)


def _centred(x: np.ndarray, batch: int, mean: np.ndarray):
    """A function giving one pass of `_batches(x, batch, mean)` per call: the batches kept from the
    first when they fit _CACHE_BYTES (the passes of a fit then convert and centre once: the same
    numbers), else a fresh read of x each time."""
    if x.shape[0] * x.shape[1] * 4 <= _CACHE_BYTES:
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
    axes = comps.T.astype(np.float32)  # (d, c) for the float32 centred rows
    for s, rows in (passes() if fit is x else _batches(x, batch, mean)):
        coords[s : s + len(rows), : len(comps)] = rows @ axes
    return Pca2(coords, explained)


def _iterate(passes: Callable, basis: np.ndarray, step: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One pass: (X^T X B (d, p), or zeros without `step`; B^T X^T X B (p, p)), each batch read once
    for both products."""
    b32 = basis.astype(np.float32)
    z = np.zeros(basis.shape)  # (d, p)
    gram = np.zeros((basis.shape[1], basis.shape[1]))  # (p, p)
    for _, rows in passes():
        for s in range(0, len(rows), _SUB_ROWS):
            sub = rows[s : s + _SUB_ROWS]  # (b, d) float32 centred
            y = sub @ b32  # (b, p)
            if step:
                z += sub.T @ y
            gram += y.T.astype(np.float64) @ y
    return z, gram


def _components(x: np.ndarray, batch: int, seed: int) -> tuple[np.ndarray, float, np.ndarray, Callable]:
    """(the first <= 2 principal axes (c, d), the share of variance they hold, the mean (d,), the
    passes over x's centred row batches as `_centred` gives them)."""
    n, d = x.shape
    mean = sum(rows.sum(axis=0) for _, rows in _batches(x, batch)) / n  # (d,)
    passes = _centred(x, batch, mean)
    total = sum(float(np.einsum("ij,ij->", rows, rows, dtype=np.float64)) for _, rows in passes())
    p = min(2 + _OVERSAMPLE, d, n)
    basis = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, p)))[0]  # (d, p) orthonormal
    for _ in range(_POWER_ITERATIONS):
        basis = np.linalg.qr(_iterate(passes, basis)[0])[0]
    # Rayleigh-Ritz in span(basis): gram = B^T C B (C the scatter matrix), so its leading
    # eigenvectors w give the axes B w and its eigenvalues the variance along them
    values, vectors = np.linalg.eigh(_iterate(passes, basis, step=False)[1])  # ascending
    comps = (basis @ vectors[:, ::-1][:, :2]).T  # (c <= 2, d)
    top = np.clip(values[::-1][:2], 0.0, None)
    comps *= np.where(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)] < 0, -1.0, 1.0)[:, None]
    return comps, float(top.sum() / total) if total > 0 else float("nan"), mean, passes
