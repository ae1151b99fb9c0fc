"""The exact search's tie rule on data full of duplicates and equal distances: the result equals a
float64 stable-sort brute force that excludes self by index and orders by (distance, id), however
the search is split (query blocks, database shards) and whether or not ranks are re-scored."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnts_ray.reliability import reference
from tests.properties.strategies import grid, knn_rows


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.data())
def test_exact_search_breaks_ties_by_distance_then_id(data):
    n = data.draw(st.integers(3, 40))
    x = data.draw(grid(n, data.draw(st.integers(1, 3)), values=data.draw(st.integers(0, 2))))
    k = data.draw(st.integers(1, n - 1))
    split = {"query_block": data.draw(st.integers(1, n)), "shards": data.draw(st.integers(1, 3)),
             "refine_ranks": data.draw(st.sampled_from([0, 128]))}
    got = knn_rows(x, k, "l2", **split)
    rows, dist = reference.knn(x, k)
    assert not (got.rows == np.arange(n)[:, None]).any(), "a sample is its own neighbour"
    np.testing.assert_array_equal(got.rows, rows, err_msg=str(split))
    np.testing.assert_allclose(got.distance, dist, rtol=1e-6, atol=1e-6)
