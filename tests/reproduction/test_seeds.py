"""Cell-wise spread over seed runs, the check that they differ only in the seed, and claims per seed."""

from __future__ import annotations

import numpy as np
import pytest

from nnts_ray.reproduction import seeds
from nnts_ray.reproduction.claims import HOLDS
from nnts_ray.reproduction.runs import load_run
from tests.reproduction.fakerun import nnts_for_k, write_run


@pytest.fixture
def runs(tmp_path):
    return [load_run(write_run(tmp_path / f"s{s}", seed=s, ks=(5, 10))) for s in range(3)]


def test_spread_is_mean_std_min_max_per_cell(runs):
    s = seeds.spread(runs, 10)
    stack = np.stack([nnts_for_k(10, seed) for seed in range(3)])
    np.testing.assert_allclose(s.mean.values, stack.mean(0))
    np.testing.assert_allclose(s.std.values, stack.std(0, ddof=1))
    np.testing.assert_allclose(s.low.values, stack.min(0))
    np.testing.assert_allclose(s.high.values, stack.max(0))
    assert seeds.common_ks(runs) == [5, 10]


def test_config_differences_allow_only_seed_k_and_places(runs, tmp_path):
    assert seeds.config_differences(runs) == {}
    other = load_run(write_run(tmp_path / "sub", seed=3, ks=(5,), n_samples=30))
    assert seeds.config_differences(runs + [other]) == {"dataset.n_samples": [None, None, None, 30]}


def test_claims_per_seed(runs):
    table = seeds.claims_per_seed(runs, [5, 10], 5)
    assert "block-diagonal (k=5)" in table and "mostly transient (NNTP k=5)" in table
    assert all(len(found) == 3 and seeds.survives(found) for found in table.values())
    assert all(c.verdict == HOLDS for c in table["layer-2 gap (k=10)"])
