"""Exact search against the brute-force reference: ties, duplicates, shards, metrics, blocks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from nnts_ray.knn.exact import knn_rows
from tests.reference import assert_same_neighbours, brute_force_knn


def test_ties_and_duplicates_follow_distance_then_id_exactly():
    # integer grid points: masses of exact ties and duplicates (including copies of the query)
    x = np.random.default_rng(0).integers(0, 3, size=(400, 3)).astype(np.float32)
    ref_rows, ref_dist = brute_force_knn(x, 12)
    for shards in (1, 3):
        nb = knn_rows(x, 12, shards=shards, query_block=97)
        np.testing.assert_array_equal(nb.rows, ref_rows)  # exact: ties broken by id
        np.testing.assert_allclose(nb.distance, ref_dist, rtol=1e-6)


def test_self_is_excluded_by_index_not_by_column():
    x = np.zeros((6, 2), dtype=np.float32)  # all duplicates: self is not necessarily first
    nb = knn_rows(x, 3)
    for i in range(6):
        assert i not in nb.rows[i]
        assert list(nb.rows[i]) == [j for j in range(6) if j != i][:3]
    assert (nb.distance == 0).all()


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_random_data_matches_reference_and_sklearn(metric):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((700, 20)) * 3 + 10).astype(np.float32)  # offset: cancellation-prone
    ref_rows, ref_dist = brute_force_knn(x, 25, metric)
    nb = knn_rows(x, 25, metric=metric, shards=2, query_block=128)
    assert_same_neighbours(nb.rows, nb.distance, ref_rows, ref_dist)
    skl = NearestNeighbors(n_neighbors=26, algorithm="brute", metric="euclidean" if metric == "l2" else "cosine").fit(x)
    _, idx = skl.kneighbors(x)
    agree = np.mean([len(set(a) & set(b[b != i][:25])) / 25 for i, (a, b) in enumerate(zip(nb.rows, idx))])
    assert agree > 0.999


def test_sharded_equals_single_and_refine_off_still_exact_on_separated_data():
    x = np.random.default_rng(2).standard_normal((900, 16)).astype(np.float32)
    single = knn_rows(x, 40, shards=1)
    for shards, block, refine in [(4, 100, 128), (3, 1000, 0)]:
        other = knn_rows(x, 40, shards=shards, query_block=block, refine_ranks=refine)
        np.testing.assert_array_equal(other.rows, single.rows)
        np.testing.assert_allclose(other.distance, single.distance, rtol=1e-5)


def test_smaller_k_is_a_prefix_of_the_largest_search():
    x = np.random.default_rng(3).standard_normal((500, 8)).astype(np.float32)
    big, small = knn_rows(x, 60), knn_rows(x, 7)
    np.testing.assert_array_equal(big.rows[:, :7], small.rows)


@pytest.mark.parametrize("k", [0, 10])
def test_k_must_be_between_1_and_n_minus_1(k):
    with pytest.raises(ValueError, match=f"k={k} is not allowed for n=10"):
        knn_rows(np.zeros((10, 2), np.float32), k)


def test_large_k_near_n():
    x = np.random.default_rng(4).standard_normal((300, 5)).astype(np.float32)
    ref_rows, ref_dist = brute_force_knn(x, 299)
    nb = knn_rows(x, 299, shards=2)
    assert_same_neighbours(nb.rows, nb.distance, ref_rows, ref_dist)


def test_blocked_large_k_path_matches_reference(monkeypatch):
    """k above FAISS_CPU_K_LIMIT goes through GEMM blocks + key selection; several blocks merge."""
    import nnts_ray.knn.exact as ex

    monkeypatch.setattr(ex, "FAISS_CPU_K_LIMIT", 8)
    monkeypatch.setattr(ex, "_BLOCK_BUDGET", 50 * 64)  # force many database blocks
    monkeypatch.setattr(ex, "_KEY_ROWS", 7)  # and uneven chunks of query rows
    x = np.random.default_rng(5).integers(0, 4, size=(500, 3)).astype(np.float32)  # ties and duplicates
    ref_rows, ref_dist = brute_force_knn(x, 40)
    for shards in (1, 2):
        nb = knn_rows(x, 40, shards=shards, query_block=64)
        np.testing.assert_array_equal(nb.rows, ref_rows)
    y = np.random.default_rng(6).standard_normal((600, 12)).astype(np.float32)
    ref_rows, ref_dist = brute_force_knn(y, 150)
    nb = knn_rows(y, 150, refine_ranks=0)
    assert_same_neighbours(nb.rows, nb.distance, ref_rows, ref_dist)


@pytest.mark.parametrize("large_k_path", [False, True])
def test_ties_are_ordered_by_id_beyond_the_rescored_ranks(monkeypatch, large_k_path):
    """With no exact re-scoring (refine_ranks=0) the order of every rank comes from the selection
    itself: FAISS (ties re-sorted afterwards) or the key selection (ties ordered by the key). Small
    integer coordinates make the GEMM distances exact, so the whole order must equal the reference."""
    import nnts_ray.knn.exact as ex

    if large_k_path:
        monkeypatch.setattr(ex, "FAISS_CPU_K_LIMIT", 8)
    x = np.random.default_rng(7).integers(0, 3, size=(700, 3)).astype(np.float32)  # 27 distinct points
    ref_rows, _ = brute_force_knn(x, 60)
    nb = knn_rows(x, 60, refine_ranks=0, query_block=128)
    np.testing.assert_array_equal(nb.rows, ref_rows)
