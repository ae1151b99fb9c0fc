"""Independent brute-force references for the metrics: plain Python sets, loops and dicts."""

from __future__ import annotations

import itertools

import numpy as np


def jaccard_reference(sets_a: list[set], sets_b: list[set]) -> tuple[float, float, list[int]]:
    """(mean Jaccard, mean overlap m/k, per-sample intersections) of two lists of k-sets."""
    inter = [len(a & b) for a, b in zip(sets_a, sets_b)]
    k = len(sets_a[0])
    jac = [len(a & b) / len(a | b) for a, b in zip(sets_a, sets_b)]
    return float(np.mean(jac)), float(np.mean([m / k for m in inter])), inter


def runs_reference(edge_sets: list[set], alpha: int) -> dict[tuple[int, int], int]:
    """T[(first, last)] by walking every pair's connection pattern along the chain."""
    T: dict[tuple[int, int], int] = {}
    for pair in set().union(*edge_sets):
        on = [v for v, e in enumerate(edge_sets) if pair in e]
        start = prev = on[0]
        for v in on[1:]:
            if v - prev - 1 > alpha:
                T[(start, prev)] = T.get((start, prev), 0) + 1
                start = v
            prev = v
        T[(start, prev)] = T.get((start, prev), 0) + 1
    return T


def undirected_edges(neighbour_sets: list[set], ids) -> set:
    return {(min(i, j), max(i, j)) for i, s in zip(ids, neighbour_sets) for j in s}


def all_pairs(n: int):
    return itertools.combinations(range(n), 2)
