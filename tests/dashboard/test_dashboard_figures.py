"""Figures against the tables they draw: every cell shown equals the value in the run's files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fakerun import KS, LAYERS, RUNS

from dashboard import figures
from nnts_ray.naming import RunPaths


@pytest.fixture(scope="module")
def sweep(runs_root: Path) -> RunPaths:
    return RunPaths(runs_root / RUNS["sweep"])


def cell(table: pl.DataFrame, column: str, **where: object) -> float:
    return table.filter(**where)[column].item()


@pytest.mark.parametrize(("form", "relative"), [("jaccard", False), ("overlap", False), ("jaccard", True), ("overlap", True)])
def test_nnts_heatmaps_show_the_table_for_every_k(sweep: RunPaths, form: str, relative: bool) -> None:
    nnts = pl.read_parquet(sweep.metric("nnts"))
    fig = figures.nnts_heatmaps(nnts, "lenet_a", LAYERS, "lenet_b", LAYERS, KS, form, relative)
    assert [t.meta for t in fig.data] == list(KS)
    for trace, k in zip(fig.data, KS):
        assert list(trace.y) == list(LAYERS) and list(trace.x) == list(LAYERS)
        for i, a in enumerate(LAYERS):
            for j, b in enumerate(LAYERS):
                where = {"model_a": "lenet_a", "layer_a": a, "model_b": "lenet_b", "layer_b": b, "k": k}
                expected = cell(nnts, form, **where) / (cell(nnts, f"chance_{form}", **where) if relative else 1)
                assert trace.z[i, j] == pytest.approx(expected)


def test_pairs_stored_one_way_are_mirrored(sweep: RunPaths) -> None:
    nnts = pl.read_parquet(sweep.metric("nnts"))
    full = figures.nnts_heatmaps(nnts, "lenet_b", LAYERS, "lenet_a", LAYERS, [KS[0]]).data[0].z
    one_way = nnts.filter(pl.col("model_a") == "lenet_a")  # (lenet_b, lenet_a) rows dropped
    mirrored = figures.nnts_heatmaps(one_way, "lenet_b", LAYERS, "lenet_a", LAYERS, [KS[0]]).data[0].z
    np.testing.assert_allclose(mirrored, full)
    assert not np.isnan(full).any()


def test_missing_cells_stay_blank(sweep: RunPaths) -> None:
    nnts = pl.read_parquet(sweep.metric("nnts")).filter(pl.col("layer_a") != "relu", pl.col("layer_b") != "relu")
    z = figures.nnts_heatmaps(nnts, "lenet_a", LAYERS, "lenet_a", LAYERS, [KS[0]]).data[0].z
    relu = LAYERS.index("relu")
    assert np.isnan(z[relu]).all() and np.isnan(z[:, relu]).all()
    assert np.isfinite(np.delete(np.delete(z, relu, 0), relu, 1)).all()


def test_nntp_matrix_fills_absent_runs_with_zero_above_the_diagonal(sweep: RunPaths) -> None:
    nntp = pl.read_parquet(sweep.metric("nntp"))
    t = figures.nntp_matrix(nntp, "lenet_a", KS[0], 0, LAYERS)
    for a, first in enumerate(LAYERS):
        for b, last in enumerate(LAYERS):
            rows = nntp.filter(model="lenet_a", k=KS[0], alpha=0, layer_first=first, layer_last=last)
            if b < a:
                assert np.isnan(t[a, b])
            else:
                assert t[a, b] == (rows["n_pairs"].item() if rows.height else 0)


def test_persistence_sums_to_the_connected_pairs_of_each_probe_point(sweep: RunPaths) -> None:
    """SPEC check: sum over a <= v <= b of T[a, b] = |E_v|, counted here straight from the neighbour tables."""
    k = KS[0]
    t = figures.nntp_matrix(pl.read_parquet(sweep.metric("nntp")), "lenet_a", k, 0, LAYERS)
    curves = figures.persistence(t, LAYERS)
    for layer in LAYERS:
        edges = pl.read_parquet(sweep.neighbours_dir("lenet_a", layer) / "*.parquet").filter(pl.col("rank") < k)
        undirected = edges.select(i=pl.min_horizontal("sample_id", "neighbour_id"), j=pl.max_horizontal("sample_id", "neighbour_id")).unique().height
        assert curves.filter(start=figures.ALL_CONNECTED, probe_point=layer)["n_pairs"].item() == undirected


def test_persistence_counts_runs_alive_at_each_point() -> None:
    t = np.array([[5.0, 1.0, 2.0], [np.nan, 4.0, 3.0], [np.nan, np.nan, 6.0]])
    curves = figures.persistence(t, ["a", "b", "c"])
    alive = {(r["start"], r["probe_point"]): r["n_pairs"] for r in curves.iter_rows(named=True)}
    assert alive[("a", "a")] == 8 and alive[("a", "b")] == 3 and alive[("a", "c")] == 2
    assert alive[("b", "b")] == 7 and alive[("b", "c")] == 3 and ("b", "a") not in alive
    assert [alive[(figures.ALL_CONNECTED, v)] for v in "abc"] == [8, 10, 11]


def test_cka_stored_once_per_pair_is_symmetric(sweep: RunPaths) -> None:
    cka = pl.read_parquet(sweep.metric("cka"))
    z = np.array(figures.cka_heatmap(cka, "lenet_b", LAYERS, "lenet_b", LAYERS).data[0].z)
    np.testing.assert_allclose(z, z.T)
    assert z[2, 0] == pytest.approx(cell(cka, "cka", model_a="lenet_b", layer_a=LAYERS[0], model_b="lenet_b", layer_b=LAYERS[2]))
    cross = np.array(figures.cka_heatmap(cka, "lenet_b", LAYERS, "lenet_a", LAYERS).data[0].z)  # stored as (lenet_a, lenet_b)
    assert cross[1, 3] == pytest.approx(cell(cka, "cka", model_a="lenet_a", layer_a=LAYERS[3], model_b="lenet_b", layer_b=LAYERS[1]))


def test_per_class_heatmap_steps_along_the_chain(sweep: RunPaths) -> None:
    per_class = pl.read_parquet(sweep.metric("per_class"))
    (trace,) = figures.per_class_heatmap(per_class, "lenet_a", LAYERS, KS[1]).data
    assert list(trace.x) == [f"{a} → {b}" for a, b in zip(LAYERS, LAYERS[1:])] and list(trace.y) == ["0", "1", "2"]
    expected = [[cell(per_class, "jaccard_mean", model_a="lenet_a", model_b="lenet_a", layer_a=a, layer_b=b, k=KS[1], label=label)
                 for a, b in zip(LAYERS, LAYERS[1:])] for label in range(3)]
    np.testing.assert_allclose(trace.z, expected)


def test_layer_statistics_follow_the_chain_order(sweep: RunPaths) -> None:
    layers = pl.read_parquet(sweep.metric("layers")).filter(model="lenet_a").reverse()
    assert {"dim", "n_edges_k", "twonn_n_used"} <= set(figures.layer_statistics(layers)) and "position" not in figures.layer_statistics(layers)
    stats = figures.default_statistics(figures.layer_statistics(layers))
    assert stats == ["twonn_id", *(f"label_agreement_k{k}" for k in KS)]  # not the fit's bookkeeping columns
    fig = figures.layer_stats_figure(layers, LAYERS, stats)
    assert list(fig.data[0].x) == list(LAYERS)
    assert list(fig.data[0].y) == [cell(layers, "twonn_id", layer=layer) for layer in LAYERS]
