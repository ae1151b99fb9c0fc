"""The graph primitives every metric uses: id → row mapping (both paths), intersections, Jaccard."""

import numpy as np
import pytest

from nnts_ray.metrics.graph import adjacency, ids_are_rows, intersections, jaccard, to_rows


@pytest.mark.parametrize("contiguous", [False, True])
def test_to_rows_maps_through_sample_ids_and_refuses_unknown_ids(sample_ids, contiguous):
    ids = np.arange(40, 45) if contiguous else sample_ids(5)
    table = np.array([[ids[1], ids[4]], [ids[0], ids[2]], [ids[3], ids[0]], [ids[2], ids[1]], [ids[0], ids[3]]])
    assert to_rows(table, ids).tolist() == [[1, 4], [0, 2], [3, 0], [2, 1], [0, 3]]
    table[2, 1] = ids[-1] + 1
    with pytest.raises(ValueError, match=str(ids[-1] + 1)):
        to_rows(table, ids)


def test_intersections_and_jaccard_match_python_sets(random_graph):
    rng = np.random.default_rng(0)
    n, k = 300, 12
    a, b = random_graph(rng, n, k), random_graph(rng, n, k)
    b[:50] = a[:50, ::-1]  # some rows identical up to order
    expected = np.array([len(set(ra) & set(rb)) for ra, rb in zip(a, b)])
    got = intersections(adjacency(a), b)
    assert got.tolist() == expected.tolist()
    assert np.allclose(jaccard(got, k), [m / len(set(ra) | set(rb)) for m, ra, rb in zip(expected, a, b)])


def test_ids_are_rows_only_for_zero_to_n_minus_one():
    assert ids_are_rows(np.arange(5)) and not ids_are_rows(np.arange(1, 6)) and not ids_are_rows(np.array([0, 2, 4]))
    assert not ids_are_rows(np.array([], np.int64))
