"""The NNTP identity and the NNTS bound: against hand arithmetic on the paper's Table 1, and against
k-NN graphs built here, where T, |E_v| and NNTS are counted pair by pair."""

from __future__ import annotations

import numpy as np
import pytest

from nnts_ray.reproduction import paper
from nnts_ray.reproduction.consistency import both_connected, edge_checks, edge_counts, overlap_bounds
from nnts_ray.reproduction.runs import LayerMatrix
from nnts_ray.reproduction.tables import matrix, ratio, thousands
from tests.reference import jaccard_reference, runs_reference, undirected_edges


def test_edge_counts_of_table1_by_hand():
    e = edge_counts(paper.table1()) / 1000
    row_i = 455 + 122 + 6.99 + 5.95 + 2.51 + 3.02 + 36.0 + 0.99 + 0.59 + 3.94 + 0.32 + 28.7
    assert e[0] == pytest.approx(row_i) == pytest.approx(666.01)
    # |E_C1|: rows I..C1, columns C1..O
    c1 = ((2.51 + 3.02 + 36.0 + 0.99 + 0.59 + 3.94 + 0.32 + 28.7) + (0.65 + 0.52 + 2.27 + 1.23 + 0.06 + 0.18 + 0.01 + 0.62)
          + (0.57 + 0.61 + 10.2 + 0.13 + 0.02 + 0.09 + 0.01 + 0.46) + (19.0 + 22.1 + 6.08 + 0.54 + 0.35 + 2.50 + 0.42 + 0.53)
          + (110 + 114 + 286 + 1.71 + 0.17 + 0.82 + 0.10 + 2.83))
    assert e[4] == pytest.approx(c1) == pytest.approx(660.85)
    col_o = 28.7 + 0.62 + 0.46 + 0.53 + 2.83 + 0.39 + 0.55 + 0.46 + 168 + 141 + 128 + 180
    assert e[-1] == pytest.approx(col_o)
    checks = edge_checks(paper.table1(), paper.PROBE_POINTS, paper.N, paper.NNTP_K)
    assert all(c.within for c in checks) and checks[0].low == 450_000 and checks[0].high == 900_000


def test_nnts_bound_for_input_and_c0_by_hand():
    first = overlap_bounds(paper.table1(), paper.PROBE_POINTS, paper.N, paper.NNTP_K)[0]
    both = 666.01 - 455  # row I without its transient cell, thousands
    assert first.both / 1000 == pytest.approx(both)
    assert first.bound == pytest.approx(2 * both * 1000 / (60_000 * 15)) == pytest.approx(0.4689, abs=1e-4)


def _knn(x: np.ndarray, k: int) -> list[set[int]]:
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return [set(np.argsort(row, kind="stable")[:k].tolist()) for row in d]


def test_identity_and_bound_on_real_graphs():
    rng = np.random.default_rng(0)
    n, k = 40, 4
    x = rng.normal(size=(n, 5))
    chain = [x := x @ rng.normal(size=(5, 5)) + 0.7 * rng.normal(size=(n, 5)) for _ in range(4)]
    neighbours = [_knn(f, k) for f in chain]
    graphs = [undirected_edges(nb, range(n)) for nb in neighbours]
    t = np.zeros((len(graphs), len(graphs)))
    for (a, b), count in runs_reference(graphs, alpha=0).items():
        t[a, b] = count
    assert edge_counts(t).tolist() == [len(g) for g in graphs]
    names = tuple(f"v{i}" for i in range(len(chain)))
    assert all(c.within for c in edge_checks(t, names, n, k, {f"v{i}": len(g) for i, g in enumerate(graphs)}))
    for v, b in enumerate(overlap_bounds(t, names, n, k)):
        jaccard, overlap, _ = jaccard_reference(neighbours[v], neighbours[v + 1])
        assert b.both == len(graphs[v] & graphs[v + 1]) == both_connected(t, v, v + 1)
        assert jaccard <= overlap <= b.bound + 1e-12


def test_thousands_prints_table1_as_the_paper_does():
    tokens = [line.split()[1:] for line in paper.TABLE1_THOUSANDS_TEXT.strip().splitlines()]
    t = paper.table1()
    assert [[thousands(v) for v in t[i, i:]] for i in range(len(t))] == tokens
    assert thousands(0) == "0" and thousands(4) == "0.004" and thousands(1318) == "1.32"


def test_nntp_table_in_thousands_and_ratio():
    t = LayerMatrix(("a", "b"), np.array([[455_000.0, 6_990.0], [0.0, 36_000.0]]))
    assert matrix(t, thousands, upper=True).splitlines()[2:] == ["| **a** | 455 | 6.99 |", "| **b** |  | 36.0 |"]
    same = ratio(LayerMatrix(paper.PROBE_POINTS, paper.table1() * 2), paper.N, paper.NNTP_K).values
    assert np.nanmax(np.abs(same - 2)) < 1e-12 and np.isnan(same[1, 0])
    scaled = ratio(LayerMatrix(paper.PROBE_POINTS, paper.table1() / 100), paper.N // 100, paper.NNTP_K).values
    assert np.nanmax(np.abs(scaled - 1)) < 1e-12  # compared as shares of n·k
