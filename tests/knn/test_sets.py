"""Neighbour sets for large k, taken from the search's distances without ranking them
(`ShardIndex.search_with_sets`): equal to the first k of a full ranked search and to the brute-force
reference — ties and duplicates included, k up to n/5 — and the ranked head from the same call
equal to a search at that k."""

from __future__ import annotations

import numpy as np
import pytest

from nnts_ray.knn import exact
from nnts_ray.knn.exact import ShardIndex, candidates_needed, finalize, knn_rows, prepare
from tests.reference import brute_force_knn


def _data(kind: str, n: int = 600) -> np.ndarray:
    rng = np.random.default_rng(4)
    if kind == "grid":  # masses of exact ties and duplicates
        return rng.integers(0, 4, size=(n, 3)).astype(np.float32)
    x = (rng.standard_normal((n, 12)) + 3).astype(np.float32)
    x[50:80] = x[7]  # 31 copies of one point
    x[200:204] = x[300]
    return x


def _sets(bits: np.ndarray, n: int) -> list[set[int]]:
    member = np.unpackbits(bits.view(np.uint8), axis=1)[:, :n].astype(bool)
    return [set(np.flatnonzero(row).tolist()) for row in member]


@pytest.mark.parametrize("sample", [4096, 40, 7])
@pytest.mark.parametrize("kind", ["grid", "gaussian"])
def test_sets_equal_a_full_ranked_search_and_the_reference(kind, sample, monkeypatch):
    """Whatever the column sample that brackets each row's k-th distance (all 600 columns, or so few
    that the bracket often misses and the row is redone whole), the sets and head are exact."""
    monkeypatch.setattr(exact, "_SAMPLE_COLS", sample)
    x = _data(kind)
    n, stored, dense = len(x), 20, [60, 120]  # 120 = n/5
    index = ShardIndex(prepare(x, "l2"))
    full = knn_rows(x, max(dense), query_block=97)  # the ranked path: one search at the largest k
    reference, _ = brute_force_knn(x, max(dense))
    for lo in range(0, n, 97):
        rows = np.arange(lo, min(n, lo + 97), dtype=np.int64)
        d2, cand, sets = index.search_with_sets(x[rows], rows, stored + 1, candidates_needed(stored, n), 128, dense)
        head = finalize(rows, d2, cand, stored, "l2")
        np.testing.assert_array_equal(head.rows, full.rows[rows, :stored])  # the stored ranks: a prefix
        for k, bits in zip(dense, sets):
            got = _sets(bits, n)
            assert got == [set(r[:k].tolist()) for r in full.rows[rows]], k
            assert got == [set(r[:k].tolist()) for r in reference[rows]], k
            assert all(len(s) == k and i not in s for i, s in zip(rows, got))


@pytest.mark.parametrize("kind", ["grid", "gaussian"])
def test_the_gpu_set_path_on_cpu_tensors_equals_the_cpu_path(kind):
    x = _data(kind)
    n, stored, dense = len(x), 20, [60, 120]
    cpu, gpu_path = ShardIndex(prepare(x, "l2")), ShardIndex(prepare(x, "l2"), force_backend="torch")
    for lo in range(0, n, 150):
        rows = np.arange(lo, min(n, lo + 150), dtype=np.int64)
        a = cpu.search_with_sets(x[rows], rows, stored + 1, candidates_needed(stored, n), 128, dense)
        b = gpu_path.search_with_sets(x[rows], rows, stored + 1, candidates_needed(stored, n), 128, dense)
        np.testing.assert_array_equal(finalize(rows, *b[:2], stored, "l2").rows, finalize(rows, *a[:2], stored, "l2").rows)
        for bits_a, bits_b in zip(a[2], b[2]):
            np.testing.assert_array_equal(bits_b, bits_a)


@pytest.mark.gpu
def test_the_cuda_set_path_equals_the_cpu_path():
    x = _data("gaussian", 3000)
    n, rows = len(x), np.arange(0, 500, dtype=np.int64)
    cpu, gpu = ShardIndex(prepare(x, "l2")), ShardIndex(prepare(x, "l2"), device="cuda")
    a = cpu.search_with_sets(x[rows], rows, 21, candidates_needed(20, n), 128, [300, 600])
    b = gpu.search_with_sets(x[rows], rows, 21, candidates_needed(20, n), 128, [300, 600])
    for bits_a, bits_b in zip(a[2], b[2]):
        assert np.mean(bits_a == bits_b) > 0.9999  # only near-ties within GEMM rounding may differ


def _near_tie_at(k: int, m: int, d: int, seed: int) -> np.ndarray:
    """Row 0 is the query; row j > 0 lies at squared distance j from it, except that the rows at ranks
    k and k + 1 are 1e-3 apart, the nearer one on the higher row. Everything sits far from the origin,
    so the fast GEMM form ‖b‖² − 2q·b + ‖q‖² carries an error (~1e-2) larger than that gap while the
    next gap (1) stays above the near-tie tolerance: only exact distances decide the boundary."""
    rng = np.random.default_rng(seed)
    sq = np.arange(m, dtype=np.float64)
    sq[k], sq[k + 1] = k + 1e-3, k  # row k + 1 is the nearer of the pair
    u = rng.standard_normal((m, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    offset = rng.standard_normal(d)
    offset *= np.sqrt(1e5) / np.linalg.norm(offset)
    x = offset + np.sqrt(sq)[:, None] * u
    return x.astype(np.float32)


def test_a_near_tie_at_the_boundary_is_decided_on_exact_distances():
    """Membership at k must follow the exact (float64, rounded to float32) distances whenever the
    k-th and (k + 1)-th GEMM distances are within float error — not only when the whole slack is."""
    k, m, wrong = 40, 120, []
    for seed in range(30):
        x = _near_tie_at(k, m, 8, seed)
        rows = np.arange(1, dtype=np.int64)
        _, _, (bits,) = ShardIndex(prepare(x, "l2")).search_with_sets(x[rows], rows, 11, 16, 128, [k])
        reference, _ = brute_force_knn(x, k)
        ranked = knn_rows(x, k, query_block=64).rows[0]  # the ranked path re-scores its head exactly
        assert set(ranked.tolist()) == set(reference[0].tolist())
        if _sets(bits, m)[0] != set(reference[0].tolist()):
            wrong.append(seed)
    assert wrong == [], f"wrong sets for seeds {wrong}"
