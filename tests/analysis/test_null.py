import numpy as np
import pytest
from scipy.stats import hypergeom

from nnts_ray.metrics.graph import adjacency
from nnts_ray.analysis.null import nnts_null, permuted_nnts, relabel


def test_relabel_renames_every_node():
    rows = np.array([[1, 2], [2, 0], [0, 1], [0, 2]])
    perm = np.array([3, 0, 1, 2])
    out = relabel(rows, perm)
    edges = {(perm[i], perm[j]) for i in range(4) for j in rows[i]}
    assert {(i, j) for i in range(4) for j in out[i]} == edges


def test_permuted_nnts_matches_a_python_loop(random_graph):
    rng = np.random.default_rng(0)
    n, k = 60, 5
    a, b = random_graph(rng, n, k), random_graph(rng, n, k)
    expected = []
    replay = np.random.default_rng(9)
    for _ in range(4):
        perm = replay.permutation(n)
        inverse = {int(p): i for i, p in enumerate(perm)}
        jaccards = []
        for i in range(n):
            moved = {int(perm[j]) for j in b[inverse[i]]}  # K_b'(i) = perm(K_b(perm^-1(i)))
            jaccards.append(len(set(a[i]) & moved) / len(set(a[i]) | moved))
        expected.append(np.mean(jaccards))
    assert permuted_nnts(adjacency(a), b, 4, np.random.default_rng(9)) == pytest.approx(expected)


def test_null_of_random_graphs_sits_at_the_chance_level(random_graph):
    """Independent random k-sets among n - 1: m is hypergeometric, E[m / (2k - m)] is exact; the
    analytic k / (2(n-1) - k) plugs E[m] in and sits a little lower (Jensen), here by 3%."""
    rng = np.random.default_rng(1)
    n, k = 1000, 20
    result = nnts_null(adjacency(random_graph(rng, n, k)), random_graph(rng, n, k), 50, rng)
    m = np.arange(k + 1)
    exact = float((hypergeom(n - 1, k, k).pmf(m) * m / (2 * k - m)).sum())
    assert result.null_mean == pytest.approx(exact, rel=0.01)
    assert result.null_mean == pytest.approx(k / (2 * (n - 1) - k), rel=0.05)
    assert abs(result.z) < 4 and result.p_value > 1e-3
    assert result.permutations == 50


def test_identical_graphs_are_far_above_the_null(random_graph):
    rows = random_graph(np.random.default_rng(2), 300, 10)
    result = nnts_null(adjacency(rows), rows, 19, np.random.default_rng(3))
    assert result.observed == 1.0
    assert result.p_value == pytest.approx(1 / 20) and result.z > 100


def test_null_needs_two_permutations(random_graph):
    rows = random_graph(np.random.default_rng(4), 20, 3)
    with pytest.raises(ValueError, match="at least 2"):
        nnts_null(adjacency(rows), rows, 1, np.random.default_rng(0))
