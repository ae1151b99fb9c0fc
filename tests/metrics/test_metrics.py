"""NNTS and NNTP against brute-force references on seeded data (no Ray)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from nnts_ray.api import analyse
from tests.reference import (
    brute_force_knn, jaccard_reference, persistent_partners_reference, runs_reference, undirected_edges,
)


def _chain(n=240, seed=0):
    """A chain of layers whose neighbourhoods drift: shared structure, then noise, then independent."""
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((n, 12)).astype(np.float32)
    x1 = x0 + 0.3 * rng.standard_normal((n, 12)).astype(np.float32)
    x2 = np.tanh(x1 @ rng.standard_normal((12, 6))).astype(np.float32)
    x3 = rng.standard_normal((n, 4)).astype(np.float32)
    x4 = x2 + 0.05 * rng.standard_normal((n, 6)).astype(np.float32)
    return {"a": x0, "b": x1, "c": x2, "d": x3, "e": x4}


def _sets(x, k, ids):
    rows, _ = brute_force_knn(x, k)
    return [set(ids[r].tolist()) for r in rows]


@pytest.fixture(scope="module", params=["sparse_ids", "row_ids"])
def chain_result(request):
    """Sparse unsorted ids take the id-lookup paths of NNTS and NNTP; ids 0..n-1 their shortcuts."""
    feats = _chain()
    ids = (np.arange(1000, 1000 + 3 * 240, 3, dtype=np.int64)[::-1].copy() if request.param == "sparse_ids"
           else np.arange(240, dtype=np.int64))
    res = analyse(feats, k=[4, 15], alpha=[0, 1, 2], nntp_k=[4, 15], sample_ids=ids)
    return feats, ids, res


def test_nnts_matches_python_sets(chain_result):
    feats, ids, res = chain_result
    names = list(feats)
    for k in (4, 15):
        sets = {name: _sets(x, k, ids) for name, x in feats.items()}
        for a in names:
            for b in names:
                jac, ovl, inter = jaccard_reference(sets[a], sets[b])
                row = res.nnts.filter(k=k, layer_a=a, layer_b=b)
                assert row.height == 1
                assert row["jaccard"][0] == pytest.approx(jac, abs=1e-12)
                assert row["overlap"][0] == pytest.approx(ovl, abs=1e-12)
                if a < b:
                    ps = res.per_sample.filter(k=k, layer_a=a, layer_b=b).sort("sample_id")
                    by_id = dict(zip(ids.tolist(), inter))
                    assert ps["intersection"].to_list() == [by_id[i] for i in sorted(ids.tolist())]


def test_nnts_matrix_is_symmetric_with_unit_diagonal(chain_result):
    _, _, res = chain_result
    t = res.nnts
    assert t.filter(pl.col("layer_a") == pl.col("layer_b"))["jaccard"].to_list() == [1.0] * 10
    joined = t.join(t, left_on=["layer_a", "layer_b", "k"], right_on=["layer_b", "layer_a", "k"])
    assert (joined["jaccard"] == joined["jaccard_right"]).all()
    assert t["n_samples"].unique().to_list() == [240]


@pytest.mark.parametrize("alpha", [0, 1, 2])
@pytest.mark.parametrize("k", [4, 15])
def test_nntp_matches_walking_every_pair(chain_result, alpha, k):
    feats, ids, res = chain_result
    names = list(feats)
    edges = [undirected_edges(_sets(x, k, ids), ids) for x in feats.values()]
    want = runs_reference(edges, alpha)
    got = {
        (names.index(f), names.index(l)): c
        for f, l, c in res.nntp.filter(k=k, alpha=alpha).select("layer_first", "layer_last", "n_pairs").iter_rows()
    }
    assert got == want


@pytest.mark.parametrize("k", [4, 15])
def test_persistent_partners_match_sets(chain_result, k):
    feats, ids, res = chain_result
    edges = [undirected_edges(_sets(x, k, ids), ids) for x in feats.values()]
    want = persistent_partners_reference(edges, ids.tolist())
    got = dict(res.partners.filter(k=k).select("sample_id", "persistent_partners").iter_rows())
    assert got == want
    t_first_last = res.nntp.filter(k=k, alpha=0, layer_first="a", layer_last="e")["n_pairs"].sum()
    assert sum(got.values()) == 2 * t_first_last  # each persistent pair counted at both ends


def test_a_pair_connected_everywhere_along_a_long_chain_is_persistent():
    x = np.random.default_rng(3).standard_normal((50, 3)).astype(np.float32)
    res = analyse([x] * 12, k=4)
    rows, _ = brute_force_knn(x, 4)
    degree = [len({int(j) for j in rows[i]} | {j for j in range(50) if i in rows[j]}) for i in range(50)]
    assert res.partners.sort("sample_id")["persistent_partners"].to_list() == degree


def test_nntp_identity_every_edge_in_exactly_one_run(chain_result):
    feats, _, res = chain_result
    names = list(feats)
    t = res.nntp.filter(alpha=0, k=4)
    for v, name in enumerate(names):
        covering = t.filter(
            pl.col("layer_first").replace_strict(names, list(range(5))) <= v,
            pl.col("layer_last").replace_strict(names, list(range(5))) >= v,
        )["n_pairs"].sum()
        e_v = res.edges.filter(layer=name, k=4)["n_edges"][0]
        assert covering == e_v
        assert 240 * 4 / 2 <= e_v <= 240 * 4


def test_independent_features_sit_at_chance_level():
    rng = np.random.default_rng(7)
    n, k = 2000, 20
    res = analyse([rng.standard_normal((n, 8)) for _ in range(2)], k=k)
    row = res.nnts.filter(layer_a="layer0", layer_b="layer1")
    # per-sample overlap ~ hypergeometric(k, k, n-1): mean k/(n-1), sd of the mean ≈ sqrt(k)/(n-1)/sqrt(n)
    assert row["chance_overlap"][0] == pytest.approx(k / (n - 1))
    assert row["chance_jaccard"][0] == pytest.approx(k / (2 * (n - 1) - k))
    assert abs(row["overlap"][0] - k / (n - 1)) < 5 * np.sqrt(k) / (n - 1) / np.sqrt(n) * 3
    assert row["jaccard"][0] < 3 * row["chance_jaccard"][0]


def test_sample_blocks_and_mask_groups_do_not_change_results():
    """Blocks of samples, and more probes than one 62-bit mask holds, give identical tables."""
    from nnts_ray.api import neighbour_table
    from nnts_ray.knn.exact import knn_rows
    from nnts_ray.metrics.tables import metric_tables
    from nnts_ray.plan import Ks, ProbePoint

    rng = np.random.default_rng(3)
    n, k, L = 60, 5, 70
    ids = np.arange(n, dtype=np.int64) * 7
    tables, probes = {}, []
    base = rng.standard_normal((n, 3))
    for v in range(L):
        x = (base + 0.2 * v * rng.standard_normal((n, 3))).astype(np.float32)
        nb = knn_rows(x, k)
        probes.append(ProbePoint("m" if v < 40 else "w", f"l{v}", v if v < 40 else v - 40))
        tables[(probes[-1].model, probes[-1].layer)] = neighbour_table(nb.rows, nb.distance, ids)
    ks = Ks.resolve([k], [k], [0], n)
    one = metric_tables(tables, probes, ids, ks, sample_block=10_000, per_sample="all")
    many = metric_tables(tables, probes, ids, ks, sample_block=7, per_sample="all")
    for a, b in zip(one, many):
        assert a.sort(a.columns).equals(b.sort(b.columns))
    within = metric_tables(tables, probes, ids, ks, per_sample="within").per_sample
    assert (within["model_a"] == within["model_b"]).all() and within.height == n * (40 * 39 + 30 * 29) // 2
    # spot-check a cross-group, cross-model pair against sets
    t = one.nnts.filter(layer_a="l3", layer_b="l65")
    sa = [set(r) for r in tables[("m", "l3")].sort("sample_id", "rank").group_by("sample_id", maintain_order=True)
          .agg("neighbour_id")["neighbour_id"].to_list()]
    sb = [set(r) for r in tables[("w", "l65")].sort("sample_id", "rank").group_by("sample_id", maintain_order=True)
          .agg("neighbour_id")["neighbour_id"].to_list()]
    assert t["model_b"][0] == "w"
    assert t["jaccard"][0] == pytest.approx(jaccard_reference(sa, sb)[0], abs=1e-12)


def _counts_by_pair(counts: np.ndarray, n_probes: int) -> dict[tuple[int, int], list[int]]:
    from nnts_ray.metrics.nnts import pair_index

    return {(int(a), int(b)): row.tolist() for a, b, row in zip(*pair_index(n_probes), counts)}


@pytest.mark.parametrize("contiguous", [False, True])
def test_bitset_mask_and_group_by_paths_agree(contiguous):
    """Dense k goes through bit sets, sparse k through the mask table (or the Polars group-by beyond
    64 probes): same counts (ids 0..n-1 take the no-lookup shortcut)."""
    from nnts_ray.api import neighbour_table
    from nnts_ray.knn.exact import knn_rows
    from nnts_ray.metrics.nnts import intersection_counts, use_bitsets

    rng = np.random.default_rng(11)
    n, k = 300, 40
    ids = np.arange(n, dtype=np.int64) if contiguous else np.sort(rng.choice(10_000, n, replace=False)).astype(np.int64)
    base = rng.standard_normal((n, 4))
    probes, tables = [], {}
    for v in range(4):
        nb = knn_rows((base + 0.5 * v * rng.standard_normal((n, 4))).astype(np.float32), k)
        probes.append(f"l{v}")
        tables[f"l{v}"] = neighbour_table(nb.rows, nb.distance, ids)
    frames = [tables[p].lazy() for p in probes]
    assert use_bitsets(k, n) and not use_bitsets(4, n)
    dense = intersection_counts(frames, ids, k, sample_block=1000, bitset_bytes=50 * 4 * n // 8, method="bitset")
    sparse = intersection_counts(frames, ids, k, sample_block=1000, method="group_by")
    masks = intersection_counts(frames, ids, k, sample_block=128, bitset_bytes=16 * n, method="masks")
    assert np.array_equal(dense, sparse)
    assert np.array_equal(masks, dense)  # sub-blocks of 16 samples, blocks of 128
    assert dense.max() > 0 and dense.min() < k
    sets = {p: [set(r) for r in t.sort("sample_id", "rank").group_by("sample_id", maintain_order=True)
                .agg("neighbour_id")["neighbour_id"].to_list()] for p, t in tables.items()}
    assert _counts_by_pair(dense, 4)[(1, 3)] == jaccard_reference(sets["l1"], sets["l3"])[2]


@pytest.mark.parametrize("k", [7, 300])
def test_mask_table_counts_match_python_sets(k):
    """The mask-table path against plain sets: 19 probes (32-bit masks, three 8-bit lookup chunks),
    k past 255 (16-bit count fields), sparse ids, rows shuffled, uneven blocks and sub-blocks."""
    from nnts_ray.metrics.nnts import intersection_counts

    rng = np.random.default_rng(5)
    n, n_probes = 400, 19
    ids = np.sort(rng.choice(5_000, n, replace=False)).astype(np.int64)
    sets = [[rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)] for _ in range(n_probes)]
    rows = pl.DataFrame({
        "probe": np.repeat(np.arange(n_probes, dtype=np.int32), n * k),
        "sample_id": np.tile(np.repeat(ids, k), n_probes),
        "rank": np.tile(np.arange(k), n * n_probes),
        "neighbour_id": ids[np.concatenate([np.concatenate(s) for s in sets])],
    }).sample(fraction=1.0, shuffle=True, seed=1)
    frames = [rows.filter(probe=p).drop("probe").lazy() for p in range(n_probes)]  # rows in shuffled order
    got = _counts_by_pair(intersection_counts(frames, ids, k, sample_block=150, bitset_bytes=4 * 23 * n,
                                              method="masks"), n_probes)
    for a, b in [(0, 1), (2, 17), (7, 8), (9, 18), (16, 18)]:
        assert got[(a, b)] == [len(set(x) & set(y)) for x, y in zip(sets[a], sets[b])]
    assert len(got) == n_probes * (n_probes - 1) // 2


def test_tables_missing_rows_fall_back_to_the_general_path():
    """The mask table needs exactly k rows per sample; a table lacking some (a sample with fewer
    neighbours) must still be counted right, by the group-by, not misread as (n, k) arrays."""
    from nnts_ray.metrics.nnts import intersection_counts

    rng = np.random.default_rng(8)
    n, k = 120, 6
    ids = np.arange(n, dtype=np.int64)
    sets = [[list(rng.choice(np.delete(np.arange(n), i), k, replace=False)) for i in range(n)] for _ in range(3)]
    sets[1][5] = sets[1][5][:2]  # sample 5 keeps 2 of its 6 neighbours at probe 1
    sets[2][7] = []  # sample 7 has none at probe 2
    frames = [pl.DataFrame({
        "sample_id": np.repeat(ids, [len(s) for s in probe]).astype(np.int64),
        "rank": np.concatenate([np.arange(len(s)) for s in probe]).astype(np.int32),
        "neighbour_id": np.concatenate([np.asarray(s, np.int64) for s in probe]),
    }).lazy() for probe in sets]
    got = _counts_by_pair(intersection_counts(frames, ids, k, sample_block=50, method="masks"), 3)
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        assert got[(a, b)] == [len(set(x) & set(y)) for x, y in zip(sets[a], sets[b])]


def test_more_probes_than_one_mask_holds_go_through_batched_masks():
    """Beyond 64 probes the mask path counts groups of probes two at a time: every pair equals the
    Polars group-by and plain sets, within a group and across groups."""
    from nnts_ray.metrics.nnts import intersection_counts

    rng = np.random.default_rng(8)
    n, k, n_probes = 80, 6, 70
    ids = np.sort(rng.choice(1_000, n, replace=False)).astype(np.int64)
    sets = [[rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)] for _ in range(n_probes)]
    frames = [pl.DataFrame({"sample_id": np.repeat(ids, k), "rank": np.tile(np.arange(k), n),
                            "neighbour_id": ids[np.concatenate(s)]}).lazy() for s in sets]
    masks = intersection_counts(frames, ids, k, sample_block=50, method="masks")
    assert np.array_equal(masks, intersection_counts(frames, ids, k, sample_block=50, method="group_by"))
    got = _counts_by_pair(masks, n_probes)
    for a, b in [(0, 1), (0, 69), (30, 31), (31, 62), (45, 68), (62, 69)]:  # groups of 31: 0-30, 31-61, 62-69
        assert got[(a, b)] == [len(set(x) & set(y)) for x, y in zip(sets[a], sets[b])]
