"""Slow, obviously-right references for the numbers the product computes (SPEC §1): a float64
brute-force k-NN search, NNTS from Python sets, NNTP by walking every pair along the chain.

They share nothing with the product's code, so an agreement means something; they are meant for
small n (the property tests and the harness's numeric cases)."""

from __future__ import annotations

from collections import Counter

import numpy as np


def knn(x: np.ndarray, k: int, metric: str = "l2") -> tuple[np.ndarray, np.ndarray]:
    """(rows (n, k), distances (n, k)) in float64: every squared distance by direct differences,
    self excluded by index (never by position), then (distance, row) ascending — the tie rule,
    spelled out as a lexicographic sort."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms > 0, norms, 1.0)
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=-1)  # (n, n)
    ids = np.arange(len(x))
    rows = np.stack([ids[ids != i][np.lexsort((ids[ids != i], d2[i, ids != i]))][:k] for i in ids])
    near = np.take_along_axis(d2, rows, axis=1)
    return rows, np.sqrt(near) if metric == "l2" else near / 2


def neighbour_sets(x: np.ndarray, k: int, metric: str = "l2") -> list[set[int]]:
    return [set(r.tolist()) for r in knn(x, k, metric)[0]]


def nnts(sets_a: list[set[int]], sets_b: list[set[int]]) -> float:
    """Mean over samples of |A ∩ B| / |A ∪ B|."""
    return float(np.mean([len(a & b) / len(a | b) for a, b in zip(sets_a, sets_b)]))


def connected(sets: list[set[int]]) -> set[tuple[int, int]]:
    """Undirected pairs {i, j} with i→j or j→i (union symmetrisation), as (min, max)."""
    return {(min(i, j), max(i, j)) for i, s in enumerate(sets) for j in s}


def nntp(chain: list[list[set[int]]], alpha: int = 0) -> Counter:
    """T[(first, last)]: for every pair, walk the probe points in order and count maximal stretches
    in which it is never unconnected at more than `alpha` consecutive points."""
    edges = [connected(sets) for sets in chain]
    T: Counter = Counter()
    for pair in set().union(*edges):
        start = last = None
        gap = 0
        for v, e in enumerate(edges):
            if pair in e:
                if start is None:
                    start = v
                last, gap = v, 0
            elif start is not None:
                gap += 1
                if gap > alpha:
                    T[(start, last)] += 1
                    start, gap = None, 0
        if start is not None:
            T[(start, last)] += 1
    return T
