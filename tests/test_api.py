"""The notebook API checks its inputs once, with the pipeline's rules, before any search: each bad
input is one ConfigError (a ValueError) naming the value — and NNTP at a k above every NNTS k is
computed on its own graph, not on a smaller one."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from nnts_ray.api import analyse
from nnts_ray.config import ConfigError
from tests.reference import brute_force_knn, runs_reference, undirected_edges

X = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)


def test_nntp_at_a_larger_k_than_nnts_uses_its_own_graph():
    feats = {"a": X, "b": X + 0.3, "c": np.tanh(X @ np.ones((4, 2), np.float32))}
    res = analyse(feats, k=[5], nntp_k=[7])
    edges = [undirected_edges([set(r.tolist()) for r in brute_force_knn(x, 7)[0]], range(50)) for x in feats.values()]
    want = runs_reference(edges, alpha=0)
    names = list(feats)
    got = {(names.index(f), names.index(l)): c for f, l, c in
           res.nntp.filter(k=7).select("layer_first", "layer_last", "n_pairs").iter_rows()}
    assert got == want and res.nntp["k"].unique().to_list() == [7]
    assert res.neighbours.group_by("layer").agg(pl.col("rank").max())["rank"].to_list() == [6, 6, 6]


@pytest.mark.parametrize("features, kwargs, message", [
    ({}, {}, "features is empty"),
    ({"h": np.float32(3.0)}, {}, "layer 'h' is a 0-d array"),
    ({"h": np.zeros((0, 3), np.float32)}, {"k": 1}, "features have 0 rows"),
    ({"h": np.array([["a", "b"]] * 10, dtype=object)}, {"k": 3}, "layer 'h' has dtype object"),
    ({"h": np.full((10, 2), 1e39)}, {"k": 3}, "values beyond float32's range"),
    ({"h": np.where(np.eye(10, 2) > 0, np.nan, 0.0)}, {"k": 3}, "layer 'h' has 2 non-finite values"),
    ({"h": X}, {"k": []}, "k=[] is empty"),
    ({"h": X}, {"k": [50]}, "k=50 is not allowed for n=50 samples"),
    ({"h": X}, {"k": [5], "nntp_k": [60]}, "nntp_k=60 is not allowed for n=50 samples"),
    ({"h": X}, {"k": [0]}, "k=0 is not allowed"),
    ({"h": X}, {"alpha": [-1]}, "metrics.alpha=-1 is not allowed"),
    ({"h": X}, {"k": 5, "metric": "l3"}, "metric='l3' is not allowed; choose one of: l2, cosine"),
    ({"h": X, "g": X[:40]}, {"k": 5}, "layer 'g' has 40 rows, expected 50"),
    ({"h": X}, {"k": 5, "sample_ids": np.zeros(50, np.int64)}, "sample_ids must be unique"),
    ({"h": X}, {"k": 5, "sample_ids": np.arange(49)}, "sample_ids has shape (49,)"),
])
def test_bad_input_is_one_clear_error(features, kwargs, message):
    with pytest.raises(ConfigError) as e:
        analyse(features, **kwargs)
    assert message in str(e.value) and "\n" not in str(e.value)
