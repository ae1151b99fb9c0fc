"""Each claim function on matrices where the answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from nnts_ray.reproduction import claims as cl
from nnts_ray.reproduction import paper
from nnts_ray.reproduction.runs import LayerMatrix
from tests.reproduction.fakerun import LAYERS, block_matrix, nnts_for_k


def m(values: np.ndarray) -> LayerMatrix:
    return LayerMatrix(LAYERS, values)


def test_block_diagonal_passes_and_anti_block_fails():
    good = cl.block_diagonal(m(block_matrix()))
    assert good.verdict == cl.HOLDS
    assert good.numbers["boundaries_in_drops"] == good.numbers["boundaries"] == 5
    # high similarity across layer boundaries, low inside layers: the opposite of the paper's blocks
    anti = cl.block_diagonal(m(1.2 - block_matrix(within=0.9, between=0.3, decay=0.0)))
    assert anti.verdict == cl.FAILS
    assert anti.numbers["within_layer_step"] < anti.numbers["across_boundary_step"]


@pytest.mark.parametrize("seed", range(5))
def test_block_diagonal_shuffled_does_not_hold(seed):
    """The same values with the probe points in a random order no longer line up with the layers."""
    order = np.random.default_rng(seed).permutation(len(LAYERS))
    shuffled = block_matrix(decay=0.0)[np.ix_(order, order)]
    assert cl.block_diagonal(m(shuffled)).verdict != cl.HOLDS


def test_decay_with_distance():
    i, j = np.indices((len(LAYERS), len(LAYERS)))
    decaying = np.exp(-np.abs(i - j) / 4)
    found = cl.decays_with_distance(m(decaying))
    assert found.verdict == cl.HOLDS and found.numbers["spearman_rho"] == pytest.approx(-1)
    assert found.numbers["share_of_steps_away_not_rising"] == 1.0
    rising = np.where(i == j, 1.0, 0.1 + 0.05 * np.abs(i - j))
    assert cl.decays_with_distance(m(rising)).verdict == cl.FAILS
    flat = np.where(i == j, 1.0, 0.5)
    assert cl.decays_with_distance(m(flat)).verdict == cl.FAILS


def test_rises_then_falls_with_k():
    mats = {k: m(nnts_for_k(k)) for k in (5, 10, 30, 40)}
    found = cl.rises_then_falls_with_k(mats, class_size=20)
    assert found.verdict == cl.HOLDS
    assert found.numbers["mean_k10"] > found.numbers["mean_k5"] > found.numbers["mean_k30"]
    only_rising = {k: m(np.clip(block_matrix() + k / 1000, 0, 1)) for k in (5, 10, 30)}
    assert cl.rises_then_falls_with_k(only_rising, class_size=20).verdict == cl.PARTLY
    assert cl.rises_then_falls_with_k(mats, class_size=100).verdict == cl.UNTESTABLE
    assert cl.rises_then_falls_with_k(mats, class_size=None).verdict == cl.UNTESTABLE


def test_last_operations_fall_most():
    mats = {k: m(nnts_for_k(k)) for k in (5, 10, 30, 40)}
    found = cl.last_operations_fall_most(mats, class_size=20)
    assert found.verdict == cl.HOLDS
    assert found.numbers["fall_last_operations"] > found.numbers["fall_other_pairs"]
    last = np.array([n in paper.LAST_OPERATIONS for n in LAYERS])
    early_fall = block_matrix() - np.where(last[:, None] | last[None, :], 0.01, 0.05)
    found = cl.last_operations_fall_most({10: m(block_matrix()), 30: m(early_fall)}, class_size=20)
    assert found.verdict == cl.FAILS and found.numbers["fall_last_operations"] == pytest.approx(0.01)


def test_layer2_gap():
    s = block_matrix()
    idx = {n: i for i, n in enumerate(LAYERS)}
    for gap, verdict in ((0.04, cl.HOLDS), (-0.09, cl.HOLDS), (0.3, cl.FAILS)):
        s[idx["P1"], idx["M3"]] = s[idx["M3"], idx["P1"]] = 0.5
        s[idx["R2"], idx["M3"]] = s[idx["M3"], idx["R2"]] = 0.5 + gap
        found = cl.layer2_gap(m(s))
        assert found.verdict == verdict and found.numbers["gap"] == pytest.approx(gap)
    missing = LayerMatrix(("input", "C0"), np.eye(2))
    assert cl.layer2_gap(missing).verdict == cl.UNTESTABLE


def test_nntp_claims_on_the_papers_table():
    t = m(paper.table1())
    transient, persist, undo = cl.nntp_claims(t, paper.N)
    assert transient.verdict == cl.HOLDS
    assert transient.numbers["diagonal_share"] == pytest.approx(3626.2 / 5007.86)
    assert persist.verdict == cl.HOLDS
    assert persist.numbers["share_of_first_pairs"] == pytest.approx(28.7 / 666.01)
    assert undo.verdict == cl.HOLDS
    assert undo.numbers["share_of_C1_runs"] == pytest.approx(286 / (110 + 114 + 286 + 1.71 + 0.17 + 0.82 + 0.10 + 2.83))


def test_nntp_claims_fail_on_persistent_tables():
    t = np.zeros((len(LAYERS), len(LAYERS)))
    t[0, -1] = 1000  # every pair connected from input to output, nothing transient
    t[np.diag_indices(len(LAYERS))] = 10
    transient, persist, undo = cl.nntp_claims(m(t), 1000)
    assert transient.verdict == cl.FAILS and persist.verdict == cl.FAILS
    assert undo.verdict == cl.FAILS  # T[C1, P1] = 0 is neither the row's largest cell nor half its runs


def test_every_claim_has_a_headline():
    mats = {k: m(nnts_for_k(k)) for k in (5, 10, 30, 40)}
    found = [c for v in cl.nnts_claims(mats, 20).values() for c in (v.values() if isinstance(v, dict) else [v])]
    found += cl.nntp_claims(m(paper.table1()), paper.N)
    assert len(found) == 3 * 4 + 2 + 3 and all(c.headline for c in found)
