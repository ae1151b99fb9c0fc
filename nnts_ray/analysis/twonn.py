"""TwoNN intrinsic dimension (Facco et al. 2017) from the neighbour tables already computed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METRICS = ("l2", "cosine")


@dataclass(frozen=True)
class TwoNN:
    dim: float | None  # None when fewer than 3 ratios survive
    n_used: int  # ratios in the fit
    n_zero: int  # samples dropped because their nearest neighbour sits at distance 0


def twonn(dist: np.ndarray, discard: float = 0.1, metric: str = "l2") -> TwoNN:
    """Fit d in F(mu) = 1 - mu^-d to mu = r2 / r1, the ratio of second to first neighbour distance.

    Only columns 0 and 1 of `dist` (n, k >= 2) are read: no second search. Samples with r1 = 0 (an
    exact duplicate) have no defined ratio and are dropped and counted; a point whose two nearest
    neighbours are copies of one point keeps mu = 1, so many duplicates bias d upward (n_zero says
    how many). As in the original estimator (and scikit-dimension's TwoNN), the largest `discard`
    fraction of ratios is left out and -log(1 - i/N) is regressed on log mu_(i) through the origin.
    Cosine tables hold 1 - cos; they are turned into chord distances sqrt(2 (1 - cos)) first.
    """
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} is not allowed; choose one of: {', '.join(METRICS)}")
    if not 0.0 <= discard < 1.0:
        raise ValueError(f"twonn discard={discard} must be in [0, 1)")
    if dist.ndim != 2 or dist.shape[1] < 2:
        raise ValueError(f"TwoNN needs at least two neighbour distances per sample; got shape {dist.shape}")
    r = np.asarray(dist[:, :2], dtype=np.float64)  # (n, 2)
    if metric == "cosine":
        r = np.sqrt(2.0 * np.maximum(r, 0.0))
    zero = r[:, 0] <= 0.0  # (n,) bool
    mu = np.sort(r[~zero, 1] / r[~zero, 0])  # (N,) float64, >= 1
    n_fit = int(len(mu) * (1.0 - discard))
    if n_fit < 3:
        return TwoNN(None, n_fit, int(zero.sum()))
    x = np.log(mu[:n_fit])  # (n_fit,)
    y = -np.log1p(-np.arange(n_fit) / len(mu))  # (n_fit,) empirical -log(1 - F)
    sxx = float(x @ x)
    return TwoNN(float(x @ y) / sxx if sxx > 0 else None, n_fit, int(zero.sum()))
