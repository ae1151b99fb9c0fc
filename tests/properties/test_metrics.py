"""NNTS and NNTP of the public API (the code the pipeline runs) against Python sets and a pair-by-pair
walk, on random directed k-NN graphs of small feature chains."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnts_ray.reliability import reference
from tests.properties.strategies import analyse, chains, ks

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None)


def _sets(res, layer: str, k: int) -> dict[int, set[int]]:
    """Each sample's k nearest neighbours as the API's own neighbour table lists them."""
    t = res.neighbours.filter(layer=layer).filter(res.neighbours.filter(layer=layer)["rank"] < k)
    out: dict[int, set[int]] = {}
    for i, j in zip(t["sample_id"].to_list(), t["neighbour_id"].to_list()):
        out.setdefault(i, set()).add(j)
    return out


def _table(res, k: int, alpha: int, names: list[str]) -> dict[tuple[int, int], int]:
    pos = {name: i for i, name in enumerate(names)}
    t = res.nntp.filter(k=k, alpha=alpha)
    return {(pos[a], pos[b]): v for a, b, v in zip(t["layer_first"], t["layer_last"], t["n_pairs"]) if v}


@SETTINGS
@given(st.data())
def test_nnts_equals_jaccard_of_python_sets(data):
    chain = data.draw(chains())
    k_list = data.draw(ks(len(chain[0])))
    res = analyse(chain, k=k_list)
    names = [f"layer{i}" for i in range(len(chain))]
    for k in k_list:
        sets = {name: _sets(res, name, k) for name in names}
        for name in names:  # the graph itself: k out-neighbours, never self
            assert all(len(s) == k and i not in s for i, s in sets[name].items())
        for a in names:
            for b in names:
                ids = sorted(sets[a])
                want = reference.nnts([sets[a][i] for i in ids], [sets[b][i] for i in ids])
                got = res.nnts.filter(k=k, layer_a=a, layer_b=b)
                assert got.height == 1
                assert got["jaccard"][0] == pytest.approx(want, abs=1e-12)
                overlap = np.mean([len(sets[a][i] & sets[b][i]) / k for i in ids])
                assert got["overlap"][0] == pytest.approx(overlap, abs=1e-12)


@SETTINGS
@given(st.data())
def test_nntp_runs_cover_every_connected_pair_once(data):
    """α = 0: Σ_{a ≤ v ≤ b} T[a, b] = |E_v| for every probe point v."""
    chain = data.draw(chains())
    k = data.draw(st.integers(1, len(chain[0]) - 1))
    res = analyse(chain, k=[k], nntp_k=[k], alpha=[0])
    names = [f"layer{i}" for i in range(len(chain))]
    T = _table(res, k, 0, names)
    for v, name in enumerate(names):
        sets = _sets(res, name, k)
        edges = reference.connected([sets[i] for i in sorted(sets)]) if sets else set()
        # connected() numbers samples by position; ids here are 0..n-1, the same thing
        assert sum(c for (a, b), c in T.items() if a <= v <= b) == len(edges), (v, T)


@SETTINGS
@given(st.data())
def test_nntp_equals_a_pair_walk_at_the_k_it_is_labelled_with(data):
    """T at (nntp_k, α) against walking every pair along the true nntp_k graphs, for α = 0 … 2 and
    an nntp_k that need not be one of the NNTS k."""
    chain = data.draw(chains())
    n = len(chain[0])
    k_list = data.draw(ks(n, most=1))
    nntp_k = data.draw(st.integers(1, n - 1))
    alphas = list(range(data.draw(st.integers(0, 2)) + 1))
    res = analyse(chain, k=k_list, nntp_k=[nntp_k], alpha=alphas)
    names = [f"layer{i}" for i in range(len(chain))]
    graphs = [reference.neighbour_sets(x, nntp_k) for x in chain]
    for alpha in alphas:
        assert _table(res, nntp_k, alpha, names) == dict(reference.nntp(graphs, alpha)), (nntp_k, k_list, alpha)
