"""Figures against the tables they draw: every cell shown equals the value in the run's files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fakerun import KS, LAYERS, RUNS

from dashboard.figures import layers as layer_figures
from dashboard.figures import persistence as nntp_figures
from dashboard.figures import samples as sample_figures
from dashboard.figures import similarity
from dashboard.figures.similarity import SHOW_P, SHOW_Z, Style
from nnts_ray.naming import RunPaths


@pytest.fixture(scope="module")
def sweep(runs_root: Path) -> RunPaths:
    return RunPaths(runs_root / RUNS["sweep"])


def cell(table: pl.DataFrame, column: str, **where: object) -> float:
    return table.filter(**where)[column].item()


@pytest.mark.parametrize(("form", "relative"), [("jaccard", False), ("overlap", False), ("jaccard", True), ("overlap", True)])
def test_nnts_heatmaps_show_the_table_for_every_k(sweep: RunPaths, form: str, relative: bool) -> None:
    nnts = pl.read_parquet(sweep.metric("nnts"))
    fig = similarity.nnts_heatmaps(nnts, "lenet_a", LAYERS, "lenet_b", LAYERS, KS, Style(form=form, relative=relative))
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
    full = similarity.nnts_heatmaps(nnts, "lenet_b", LAYERS, "lenet_a", LAYERS, [KS[0]]).data[0].z
    one_way = nnts.filter(pl.col("model_a") == "lenet_a")  # (lenet_b, lenet_a) rows dropped
    mirrored = similarity.nnts_heatmaps(one_way, "lenet_b", LAYERS, "lenet_a", LAYERS, [KS[0]]).data[0].z
    np.testing.assert_allclose(mirrored, full)
    assert not np.isnan(full).any()


def test_missing_cells_stay_blank(sweep: RunPaths) -> None:
    nnts = pl.read_parquet(sweep.metric("nnts")).filter(pl.col("layer_a") != "relu", pl.col("layer_b") != "relu")
    z = similarity.nnts_heatmaps(nnts, "lenet_a", LAYERS, "lenet_a", LAYERS, [KS[0]]).data[0].z
    relu = LAYERS.index("relu")
    assert np.isnan(z[relu]).all() and np.isnan(z[:, relu]).all()
    assert np.isfinite(np.delete(np.delete(z, relu, 0), relu, 1)).all()


def test_nntp_matrix_fills_absent_runs_with_zero_above_the_diagonal(sweep: RunPaths) -> None:
    nntp = pl.read_parquet(sweep.metric("nntp"))
    t = nntp_figures.nntp_matrix(nntp, "lenet_a", KS[0], 0, LAYERS)
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
    t = nntp_figures.nntp_matrix(pl.read_parquet(sweep.metric("nntp")), "lenet_a", k, 0, LAYERS)
    curves = nntp_figures.persistence(t, LAYERS)
    for layer in LAYERS:
        edges = pl.read_parquet(sweep.neighbours_dir("lenet_a", layer) / "*.parquet").filter(pl.col("rank") < k)
        undirected = edges.select(i=pl.min_horizontal("sample_id", "neighbour_id"), j=pl.max_horizontal("sample_id", "neighbour_id")).unique().height
        assert curves.filter(start=nntp_figures.ALL_CONNECTED, probe_point=layer)["n_pairs"].item() == undirected


def test_persistence_counts_runs_alive_at_each_point() -> None:
    t = np.array([[5.0, 1.0, 2.0], [np.nan, 4.0, 3.0], [np.nan, np.nan, 6.0]])
    curves = nntp_figures.persistence(t, ["a", "b", "c"])
    alive = {(r["start"], r["probe_point"]): r["n_pairs"] for r in curves.iter_rows(named=True)}
    assert alive[("a", "a")] == 8 and alive[("a", "b")] == 3 and alive[("a", "c")] == 2
    assert alive[("b", "b")] == 7 and alive[("b", "c")] == 3 and ("b", "a") not in alive
    assert [alive[(nntp_figures.ALL_CONNECTED, v)] for v in "abc"] == [8, 10, 11]


def test_cka_stored_once_per_pair_is_symmetric(sweep: RunPaths) -> None:
    cka = pl.read_parquet(sweep.metric("cka"))
    z = np.array(similarity.cka_heatmap(cka, "lenet_b", LAYERS, "lenet_b", LAYERS).data[0].z)
    np.testing.assert_allclose(z, z.T)
    assert z[2, 0] == pytest.approx(cell(cka, "cka", model_a="lenet_b", layer_a=LAYERS[0], model_b="lenet_b", layer_b=LAYERS[2]))
    cross = np.array(similarity.cka_heatmap(cka, "lenet_b", LAYERS, "lenet_a", LAYERS).data[0].z)  # stored as (lenet_a, lenet_b)
    assert cross[1, 3] == pytest.approx(cell(cka, "cka", model_a="lenet_a", layer_a=LAYERS[3], model_b="lenet_b", layer_b=LAYERS[1]))


def test_per_class_heatmap_steps_along_the_chain(sweep: RunPaths) -> None:
    per_class = pl.read_parquet(sweep.metric("per_class"))
    trace, cells = similarity.per_class_heatmap(per_class, "lenet_a", LAYERS, KS[1]).data
    assert list(trace.x) == [f"{a} → {b}" for a, b in zip(LAYERS, LAYERS[1:])] and list(trace.y) == ["0", "1", "2"]
    assert set(zip(cells.x, cells.y)) == {(x, y) for x in trace.x for y in trace.y}  # a click target on every cell
    np.testing.assert_allclose(np.reshape(cells.customdata, trace.z.shape), trace.z)
    expected = [[cell(per_class, "jaccard_mean", model_a="lenet_a", model_b="lenet_a", layer_a=a, layer_b=b, k=KS[1], label=label)
                 for a, b in zip(LAYERS, LAYERS[1:])] for label in range(3)]
    np.testing.assert_allclose(trace.z, expected)


def test_layer_statistics_follow_the_chain_order(sweep: RunPaths) -> None:
    layers = pl.read_parquet(sweep.metric("layers")).filter(model="lenet_a").reverse()
    assert {"dim", "n_edges_k", "twonn_n_used"} <= set(layer_figures.layer_statistics(layers)) and "position" not in layer_figures.layer_statistics(layers)
    stats = layer_figures.default_statistics(layer_figures.layer_statistics(layers))
    assert stats == ["twonn_id", *(f"label_agreement_k{k}" for k in KS)]  # not the fit's bookkeeping columns
    fig = layer_figures.layer_stats_figure(layers, LAYERS, stats)
    assert list(fig.data[0].x) == list(LAYERS)
    assert list(fig.data[0].y) == [cell(layers, "twonn_id", layer=layer) for layer in LAYERS]


def null_table(sweep: RunPaths) -> pl.DataFrame:
    return pl.read_parquet(sweep.metric("nnts_null"))


def test_raw_nnts_share_one_fixed_0_to_1_colour_axis_unless_stretched(sweep: RunPaths) -> None:
    nnts = pl.read_parquet(sweep.metric("nnts"))
    fixed = similarity.nnts_heatmaps(nnts, "lenet_a", LAYERS, "lenet_a", LAYERS, KS)
    assert {t.coloraxis for t in fixed.data} == {"coloraxis"}
    assert (fixed.layout.coloraxis.cmin, fixed.layout.coloraxis.cmax) == (0, 1)
    stretched = similarity.nnts_heatmaps(nnts, "lenet_a", LAYERS, "lenet_a", LAYERS, KS, Style(stretch=True))
    assert stretched.layout.coloraxis.cmin is None and stretched.layout.coloraxis.cmax is None
    assert "stretched" in stretched.layout.coloraxis.colorbar.title.text


@pytest.mark.parametrize("show", ["relative", SHOW_Z])
def test_relative_and_z_get_one_colour_axis_per_k_said_in_each_colour_bar(sweep: RunPaths, show: str) -> None:
    style = Style(relative=True) if show == "relative" else Style(show=SHOW_Z)
    fig = similarity.nnts_heatmaps(pl.read_parquet(sweep.metric("nnts")), "lenet_a", LAYERS, "lenet_a", LAYERS, KS, style, null_table(sweep))
    axes = [t.coloraxis for t in fig.data]
    assert axes == ["coloraxis", "coloraxis2"]
    for axis, k in zip(axes, KS):
        assert f"k = {k} only" in fig.layout[axis].colorbar.title.text and fig.layout[axis].cmin is None
    assert fig.layout.coloraxis.colorbar.x < fig.layout.xaxis2.domain[0]  # each bar beside its own panel


def test_z_and_p_views_show_the_null_table_with_p_in_scientific_notation(sweep: RunPaths) -> None:
    nnts, null = pl.read_parquet(sweep.metric("nnts")), null_table(sweep)
    z_fig = similarity.nnts_heatmaps(nnts, "lenet_a", LAYERS, "lenet_b", LAYERS, [KS[0]], Style(show=SHOW_Z), null)
    p_fig = similarity.nnts_heatmaps(nnts, "lenet_a", LAYERS, "lenet_b", LAYERS, [KS[0]], Style(show=SHOW_P), null)
    for i, a in enumerate(LAYERS):
        for j, b in enumerate(LAYERS):
            row = null.filter(model_a="lenet_a", layer_a=a, model_b="lenet_b", layer_b=b, k=KS[0])  # stored (lenet_a, lenet_b) once
            assert z_fig.data[0].z[i, j] == pytest.approx(row["z"].item())
            assert p_fig.data[0].z[i, j] == pytest.approx(-np.log10(row["p_value"].item()))
            assert p_fig.data[0].text[i, j] == f"{row['p_value'].item():.1e}" and "e-" in p_fig.data[0].text[i, j]
    assert p_fig.layout.coloraxis.colorbar.ticktext[:2] == ("1", "1e-1")


def test_cells_not_above_the_null_are_greyed_not_hidden(sweep: RunPaths) -> None:
    nnts, null = pl.read_parquet(sweep.metric("nnts")), null_table(sweep)
    fig = similarity.nnts_heatmaps(nnts, "lenet_a", LAYERS, "lenet_a", LAYERS, [KS[1]], Style(grey_level=0.05), null)
    main, grey = fig.data
    p = {(a, b): v for a, b, v in null.filter(model_a="lenet_a", model_b="lenet_a", k=KS[1]).select("layer_a", "layer_b", "p_value").iter_rows()}
    for i, a in enumerate(LAYERS):
        for j, b in enumerate(LAYERS):
            tested = p.get((a, b), p.get((b, a)))
            greyed = tested is not None and tested >= 0.05
            assert (grey.z[i, j] == 1) == greyed and np.isnan(main.z[i, j]) == greyed
    assert np.isfinite(grey.z).sum() == 2 * (len(LAYERS) - 1)  # the logits row and column (p = 0.5), not the diagonal


def test_nntp_heatmap_log_colour_thousands_grey_zeros_and_blank_lower_triangle(sweep: RunPaths) -> None:
    nntp = pl.read_parquet(sweep.metric("nntp")).filter(model="lenet_a", k=KS[0], alpha=0)
    t = nntp_figures.nntp_matrix(nntp, "lenet_a", KS[0], 0, LAYERS)
    counts, zeros = nntp_figures.nntp_heatmap(t, LAYERS).data
    for a, first in enumerate(LAYERS):
        for b, last in enumerate(LAYERS):
            stored = nntp.filter(layer_first=first, layer_last=last)["n_pairs"]
            n = stored.item() if stored.len() else 0
            # every cell labelled by one trace only (two labels on a cell overlay a dark copy on a white one)
            if b < a:
                assert np.isnan(counts.z[a, b]) and np.isnan(zeros.z[a, b]) and counts.text[a, b] == zeros.text[a, b] == ""
            elif n == 0:
                assert np.isnan(counts.z[a, b]) and zeros.z[a, b] == 0 and zeros.text[a, b] == "0" and counts.text[a, b] == ""
            else:
                assert counts.z[a, b] == pytest.approx(np.log10(n)) and np.isnan(zeros.z[a, b]) and zeros.text[a, b] == ""
                assert float(counts.text[a, b]) == pytest.approx(n / 1000, abs=0.05 if n >= 100 else 5e-4) and counts.text[a, b] != "0"
    assert "stretches" in counts.colorbar.title.text and "log" in counts.colorbar.title.text


def test_thousands_never_rounds_a_count_to_zero() -> None:
    labels = nntp_figures.thousands(np.array([[0.0, 7.0, 99.0, 100.0, 26_345.0, np.nan]]))
    assert labels.tolist() == [["0", "0.007", "0.099", "0.1", "26.3", ""]]


def test_per_class_reads_upwards_class_0_at_the_bottom(sweep: RunPaths) -> None:
    fig = similarity.per_class_heatmap(pl.read_parquet(sweep.metric("per_class")), "lenet_a", LAYERS, KS[0])
    assert fig.layout.yaxis.autorange is True and list(fig.layout.yaxis.categoryarray) == ["0", "1", "2"]
    assert (fig.data[0].zmin, fig.data[0].zmax) == (0, 1)


def test_label_ceiling_is_what_class_sizes_allow() -> None:
    labels = np.array([0] * 3 + [1] * 10 + [2] * 30)
    for k in (1, 5, 20):
        brute = np.mean([min(k, int((labels == c).sum()) - 1) / k for c in labels])  # same-class others, at most k of them
        assert layer_figures.label_ceiling(labels, k) == pytest.approx(brute)
    assert layer_figures.label_ceiling(labels, 1) == 1.0


def test_layer_panels_have_axis_titles_and_reference_lines(sweep: RunPaths) -> None:
    layers = pl.read_parquet(sweep.metric("layers")).filter(model="lenet_a")
    labels = pl.read_parquet(sweep.samples)["label"].to_numpy()
    stats = ["twonn_id", f"label_agreement_k{KS[1]}"]
    fig = layer_figures.layer_stats_figure(layers, LAYERS, stats, labels)
    assert (fig.layout.yaxis.title.text, fig.layout.yaxis2.title.text) == ("intrinsic dimension (TwoNN)", f"label agreement (k = {KS[1]})")
    lines = {t.name: set(t.y) for t in fig.data if t.name in (layer_figures.CHANCE, layer_figures.CEILING)}
    assert lines == {"chance": {layers["label_agreement_chance"][0]}, "ceiling": {layer_figures.label_ceiling(labels, KS[1])}}


def test_depth_profile_reads_the_table_against_each_reference(sweep: RunPaths) -> None:
    nnts = pl.read_parquet(sweep.metric("nnts"))
    value = {(a, b): cell(nnts, "jaccard", model_a="lenet_b", model_b="lenet_b", layer_a=a, layer_b=b, k=KS[0]) for a in LAYERS for b in LAYERS}
    first = similarity.depth_profile(nnts, "lenet_b", LAYERS, KS[0], "jaccard", similarity.FROM_INPUT)
    steps = similarity.depth_profile(nnts, "lenet_b", LAYERS, KS[0], "jaccard", similarity.CONSECUTIVE)
    last = similarity.depth_profile(nnts, "lenet_b", LAYERS, KS[0], "jaccard", similarity.TO_OUTPUT)
    assert first["value"].to_list() == [value[LAYERS[0], v] for v in LAYERS]
    assert steps["layer"].to_list() == list(LAYERS[1:]) and steps["value"].to_list() == [value[a, b] for a, b in zip(LAYERS, LAYERS[1:])]
    assert last["value"].to_list() == [value[v, LAYERS[-1]] for v in LAYERS]


def test_difference_is_b_minus_a_on_a_symmetric_scale_centred_at_0() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.uniform(size=(3, 3)), rng.uniform(size=(3, 3))
    (trace,) = similarity.difference_heatmap(a, b, ["x", "y", "z"], "run1 · m", "run2 · m", "jaccard").data
    np.testing.assert_allclose(trace.z, b - a)
    assert trace.zmid == 0 and trace.zmin == -trace.zmax == -np.abs(b - a).max()


def test_histogram_counts_and_bins_agree_with_numpy(sweep: RunPaths) -> None:
    jaccard = pl.read_parquet(sweep.metric("per_sample")).filter(model_a="lenet_a", model_b="lenet_a", k=KS[0])["jaccard"].to_numpy()
    jaccard = np.concatenate([jaccard, [0.0, 0.05, 0.25, 1.0]])  # bin edges included
    (bars,) = [t for t in sample_figures.jaccard_histogram(jaccard, 0.1).data]
    expected, _ = np.histogram(jaccard, bins=sample_figures.EDGES)
    assert np.asarray(bars.y).tolist() == expected.tolist()
    bins = sample_figures.bin_of(jaccard)
    for i in range(sample_figures.BINS):  # the samples a click on bar i lists are those numpy counts in it
        lo, hi = sample_figures.EDGES[i], sample_figures.EDGES[i + 1]
        inside = (jaccard >= lo) & ((jaccard < hi) if i < sample_figures.BINS - 1 else (jaccard <= hi))
        assert (bins == i).tolist() == inside.tolist()


def test_embedding_map_marks_the_sample_and_its_neighbours(sweep: RunPaths) -> None:
    embedding = pl.read_parquet(sweep.metric("embedding")).filter(model="lenet_a")
    near = {"conv": [4, 9, 11]}
    fig = sample_figures.embedding_map(embedding, ["input", "conv"], 7, near, pl.read_parquet(sweep.samples), {"conv": 0.5})
    star = [t for t in fig.data if t.name == "sample #7"]
    circles = [t for t in fig.data if t.name == "neighbours"]
    assert len(star) == len(circles) == 2 and fig.layout.annotations[1].text == "conv · PCA 50% var."
    xy = embedding.filter(layer="conv", sample_id=7)
    assert (star[1].x[0], star[1].y[0]) == pytest.approx((xy["x"].item(), xy["y"].item()))
    assert sorted(np.asarray(circles[1].text).tolist()) == near["conv"] and len(circles[0].x) == 0
