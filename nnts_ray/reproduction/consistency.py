"""Arithmetic that any NNTP table must satisfy under SPEC §1, applied to the paper's Table 1 and to ours.

For α = 0 every pair connected at probe point v lies in exactly one maximal run covering v, so
|E_v| = Σ_{a ≤ v ≤ b} T[a, b], and with k out-neighbours per sample n·k/2 ≤ |E_v| ≤ n·k. The pairs
connected at every point from v to w are Σ_{a ≤ v, b ≥ w} T[a, b]. For consecutive points v, v+1 these are
exactly the pairs connected at both; each gives at most two directed edges present in both graphs, so
Σ_i |K_vi ∩ K_{v+1,i}| ≤ 2·that, mean overlap ≤ 2·that / (n·k), and mean Jaccard ≤ mean overlap
(m/(2k−m) ≤ m/k). (For points further apart T only gives the pairs connected all the way, not a bound.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def edge_counts(t: np.ndarray) -> np.ndarray:
    """|E_v| = Σ_{a ≤ v ≤ b} T[a, b] for every v: (L,)."""
    return np.array([t[: v + 1, v:].sum() for v in range(len(t))])


def both_connected(t: np.ndarray, v: int, w: int) -> float:
    """Pairs connected at every probe point from v to w (v ≤ w): Σ_{a ≤ v, b ≥ w} T[a, b]."""
    return float(t[: v + 1, w:].sum())


@dataclass(frozen=True)
class EdgeCheck:
    """One probe point's |E_v| from T against the bounds n·k/2 and n·k (and the run's own count)."""

    layer: str
    edges: float
    low: float
    high: float
    recorded: float | None  # |E_v| as the run recorded it (layers.parquet), None for the paper

    @property
    def within(self) -> bool:
        return self.low <= self.edges <= self.high and (self.recorded is None or self.recorded == self.edges)


def edge_checks(t: np.ndarray, names: tuple[str, ...], n: int, k: int,
                recorded: dict[str, int] | None = None) -> list[EdgeCheck]:
    return [EdgeCheck(name, float(e), n * k / 2, float(n * k), None if recorded is None else float(recorded[name]))
            for name, e in zip(names, edge_counts(t))]


@dataclass(frozen=True)
class OverlapBound:
    """What T allows for NNTS between consecutive probe points a and b at its k."""

    a: str
    b: str
    both: float  # pairs connected at a and at b
    bound: float  # upper bound on mean overlap, hence on NNTS (Jaccard): min(1, 2·both / (n·k))
    measured: float | None = None  # NNTS (Jaccard) of the run, when there is one


def overlap_bounds(t: np.ndarray, names: tuple[str, ...], n: int, k: int) -> list[OverlapBound]:
    """The bound for every consecutive pair of probe points."""
    out = []
    for v in range(len(names) - 1):
        both = both_connected(t, v, v + 1)
        out.append(OverlapBound(names[v], names[v + 1], both, min(1.0, 2 * both / (n * k))))
    return out
