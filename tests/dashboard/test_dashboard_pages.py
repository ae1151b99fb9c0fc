"""Every page of the real app under AppTest, on the runs fakerun.py writes: values shown equal the files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fakerun import KS, LAYERS, N_SAMPLES, RUNS, write_run
from pagetest import PAGES, array, dataframe, figures, messages, open_page, texts, widget

from dashboard import RUNS_ENV
from dashboard.figures.layers import label_ceiling
from nnts_ray.naming import RunPaths

pytestmark = pytest.mark.usefixtures("app_env")


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("role", sorted(RUNS))
def test_every_page_opens_on_every_run_without_a_traceback(page: str, role: str) -> None:
    at = open_page(page, RUNS[role])
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, "the page rendered nothing"


def test_nnts_heatmap_equals_the_table(runs_root: Path) -> None:
    at = open_page("views/nnts.py", RUNS["sweep"])
    nnts = pl.read_parquet(RunPaths(runs_root / RUNS["sweep"]).metric("nnts")).filter(model_a="lenet_a", model_b="lenet_a")
    traces = figures(at)[0]["data"]
    assert [t["meta"] for t in traces] == list(KS)
    for trace, k in zip(traces, KS):
        expected = [[nnts.filter(layer_a=a, layer_b=b, k=k)["jaccard"].item() for b in LAYERS] for a in LAYERS]
        np.testing.assert_allclose(array(trace["z"]), expected)
        assert trace["y"] == list(LAYERS)


def test_nnts_relative_to_chance_divides_by_the_chance_level(runs_root: Path) -> None:
    at = open_page("views/nnts.py", RUNS["sweep"])
    at.radio(key="nnts-form").set_value("overlap")
    at.radio(key="nnts-scale").set_value("relative to chance")
    at.multiselect(key="nnts-k").set_value([KS[1]]).run()
    nnts = pl.read_parquet(RunPaths(runs_root / RUNS["sweep"]).metric("nnts")).filter(model_a="lenet_a", model_b="lenet_a", k=KS[1])
    (trace,) = figures(at)[0]["data"]
    expected = [[nnts.filter(layer_a=a, layer_b=b).select(pl.col("overlap") / pl.col("chance_overlap")).item() for b in LAYERS] for a in LAYERS]
    np.testing.assert_allclose(array(trace["z"]), expected)
    assert "z vs permutation null" in trace["hovertemplate"]  # the sweep has metrics/nnts_null.parquet


def test_cross_model_heatmap_has_model_a_rows_and_model_b_columns(runs_root: Path) -> None:
    at = open_page("views/models.py", RUNS["sweep"])
    at.selectbox(key="cross-a").set_value("lenet_b")
    at.selectbox(key="cross-b").set_value("lenet_a").run()
    nnts = pl.read_parquet(RunPaths(runs_root / RUNS["sweep"]).metric("nnts")).filter(model_a="lenet_b", model_b="lenet_a", k=KS[0])
    nnts_figure, cka_figure = figures(at)
    z = array(nnts_figure["data"][0]["z"])
    np.testing.assert_allclose(z, [[nnts.filter(layer_a=a, layer_b=b)["jaccard"].item() for b in LAYERS] for a in LAYERS])
    cka = pl.read_parquet(RunPaths(runs_root / RUNS["sweep"]).metric("cka")).filter(model_a="lenet_a", model_b="lenet_b")  # stored (a, b) only
    np.testing.assert_allclose(array(cka_figure["data"][0]["z"]), [[cka.filter(layer_a=b, layer_b=a)["cka"].item() for b in LAYERS] for a in LAYERS])


def test_nntp_matrix_and_persistence(runs_root: Path) -> None:
    at = open_page("views/nntp.py", RUNS["single"])
    nntp = pl.read_parquet(RunPaths(runs_root / RUNS["single"]).metric("nntp")).filter(k=KS[0], alpha=0)
    matrix, survival = figures(at)[:2]
    t = array(matrix["data"][0]["customdata"])  # the counts; z holds their log10
    for row in nntp.iter_rows(named=True):
        assert t[LAYERS.index(row["layer_first"]), LAYERS.index(row["layer_last"])] == row["n_pairs"]
    assert np.nansum(t) == nntp["n_pairs"].sum()
    from_input = next(tr for tr in survival["data"] if tr["name"] == LAYERS[0])
    expected = [nntp.filter(pl.col("layer_first") == LAYERS[0], pl.col("layer_last").is_in(LAYERS[v:]))["n_pairs"].sum() for v in range(len(LAYERS))]
    assert array(from_input["y"]).tolist() == expected
    (partners,) = figures(at)[2]["data"]  # every sample counted once; the sum is twice T[first, last]
    assert array(partners["y"]).sum() == N_SAMPLES
    assert (array(partners["x"]) * array(partners["y"])).sum() == 2 * t[0, -1]


def test_per_layer_shows_statistics_and_cka_beside_nnts(runs_root: Path) -> None:
    at = open_page("views/layers.py", RUNS["sweep"])
    layers = pl.read_parquet(RunPaths(runs_root / RUNS["sweep"]).metric("layers")).filter(model="lenet_a")
    stats, cka, nnts = figures(at)
    assert [t["name"] for t in stats["data"] if t["name"] not in ("chance", "ceiling")] == ["twonn_id", *(f"label_agreement_k{k}" for k in KS)]
    assert array(stats["data"][0]["y"]).tolist() == [layers.filter(layer=layer)["twonn_id"].item() for layer in LAYERS]
    assert "CKA" in cka["layout"]["title"]["text"] and nnts["data"][0]["meta"] == KS[0]


def test_per_layer_says_what_a_run_did_not_compute() -> None:
    at = open_page("views/layers.py", RUNS["single"])
    assert "Linear CKA (metrics/cka.parquet): not computed in this run." in messages(at)["info"]
    assert len(figures(at)) == 2  # statistics and NNTS still shown


def test_single_sample_reads_its_neighbours_and_marks_persistent_ones(runs_root: Path) -> None:
    at = open_page("views/samples.py", RUNS["sweep"])
    at.selectbox(key="samples-id").set_value(7).run()
    shown = dataframe(at, 0)
    stored = pl.read_parquet(RunPaths(runs_root / RUNS["sweep"]).neighbours_root / "model=lenet_a" / "**" / "*.parquet", hive_partitioning=True)
    for layer in LAYERS:
        expected = stored.filter(pl.col("layer") == layer, sample_id=7).filter(pl.col("rank") < KS[0]).sort("rank")["neighbour_id"].to_list()
        assert shown.filter(layer=layer)["neighbour_id"].to_list() == expected
        previous = set(shown.filter(position=LAYERS.index(layer) - 1)["neighbour_id"])
        assert shown.filter(layer=layer)["kept"].to_list() == [n in previous for n in expected]
    html = at.html[0].value
    assert html.count("data:image/png;base64,") == 1 + len(LAYERS) * KS[0] - shown["neighbour_id"].to_list().count(1)


def test_single_sample_without_thumbnails_shows_placeholders() -> None:
    at = open_page("views/samples.py", RUNS["single"])
    assert "data:image/png" not in at.html[0].value and "–</div>" in at.html[0].value
    assert any("no thumbnails" in c.value for c in at.caption)


@pytest.mark.parametrize("role", ["sweep", "single"])  # the single run also has most_changed.parquet (consecutive pairs only)
def test_most_changed_lists_the_lowest_jaccard_first(runs_root: Path, role: str) -> None:
    at = open_page("views/samples.py", RUNS[role])
    at.radio(key="samples-how").set_value("most changed").run()
    per_sample = pl.read_parquet(RunPaths(runs_root / RUNS[role]).metric("per_sample"))
    model = at.selectbox(key="samples-model").value
    lowest = per_sample.filter(model_a=model, model_b=model, layer_a=LAYERS[0], layer_b=LAYERS[-1], k=KS[0]).sort("jaccard", "sample_id").head(20)
    picker = widget(at, "selectbox", "Most changed")
    assert picker.options == [f"#{s} (Jaccard {j:.3f})" for s, j in lowest.select("sample_id", "jaccard").iter_rows()]
    assert picker.value == lowest["sample_id"][0]
    assert dataframe(at, 0)["layer"].n_unique() == len(LAYERS)


def test_runs_page_lists_runs_and_compares_several(runs_root: Path) -> None:
    at = open_page("views/runs.py", RUNS["sweep"])
    listing = dataframe(at, 0)
    assert sorted(listing["run_dir"]) == sorted(RUNS.values())
    assert listing.filter(run_dir=RUNS["sweep"])["models"].item() == "lenet_a, lenet_b"
    assert at.header[0].value == RUNS["sweep"]
    assert "Static HTML report of this run" in [b.label for b in at.get("download_button")]
    at.multiselect(key=f"compare-{RUNS['sweep']}").set_value([RUNS["single"]]).run()
    timings = figures(at)[0]
    assert [t["name"] for t in timings["data"]] == [RUNS["sweep"], RUNS["single"]]
    differences = dataframe(at, len(at.dataframe) - 1)
    assert "models" in differences["setting"].to_list() and "k" not in differences["setting"].to_list()
    at.multiselect(key=f"compare-{RUNS['sweep']}").set_value([RUNS["unreadable"], RUNS["corrupt"]]).run()
    assert not at.exception and messages(at)["error"][0].startswith(f"Run '{RUNS['unreadable']}' cannot be compared: manifest.json")


def test_run_in_progress_says_what_is_not_written_yet() -> None:
    assert any("still in progress" in m for m in messages(open_page("views/runs.py", RUNS["running"]))["info"])
    assert messages(open_page("views/nnts.py", RUNS["running"]))["info"] == [
        "NNTS (metrics/nnts.parquet): not written yet — this run is still in progress (status 'running')."]
    samples = open_page("views/samples.py", RUNS["running"])
    assert any("relu, logits: not written yet" in m for m in messages(samples)["info"])
    assert dataframe(samples, 0)["layer"].unique(maintain_order=True).to_list() == list(LAYERS[:2])


@pytest.mark.parametrize(("page", "file"), [("views/nnts.py", "metrics/nnts.parquet"), ("views/nntp.py", "metrics/nntp.parquet"),
                                            ("views/samples.py", "neighbour tables")])
def test_corrupt_file_is_an_error_message(page: str, file: str) -> None:
    errors = messages(open_page(page, RUNS["corrupt"]))["error"]
    assert len(errors) == 1 and file in errors[0] and "could not be read" in errors[0]


def test_unreadable_manifest_is_an_error_message() -> None:
    (error,) = messages(open_page("views/nnts.py", RUNS["unreadable"]))["error"]
    assert error.startswith(f"Run '{RUNS['unreadable']}' cannot be shown: manifest.json could not be read")


@pytest.mark.parametrize("escape", ["../../etc", "/etc", "..", "nested/../../x", "notes"])
def test_run_query_parameter_outside_the_catalog_is_refused(escape: str) -> None:
    at = open_page("views/runs.py", escape)
    assert messages(at)["warning"] == [f"{escape!r} is not a run under the runs directory; it was not opened."]
    shown = at.selectbox(key="run").value
    assert shown in RUNS.values() and at.query_params["run"] == shown


def test_empty_runs_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RUNS_ENV, str(tmp_path))
    for page in PAGES:
        at = open_page(page)
        assert not at.exception
        assert any(m.startswith(f"No runs under {tmp_path}") for m in messages(at)["info"])


def test_missing_runs_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RUNS_ENV, str(tmp_path / "gone"))
    at = open_page("views/nnts.py")
    assert not at.exception and messages(at)["error"] == [f"The runs directory {tmp_path / 'gone'} does not exist."]


@pytest.fixture
def hostile_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run whose NNTS table is a link to a file outside the runs directory, and whose manifest names a
    model '../escape'; next to it a run whose manifest has malformed probe points."""
    root = tmp_path / "runs"
    paths = write_run(root / "hostile", ["lenet"], thumbnails=False)
    outside = tmp_path / "outside.parquet"
    paths.metric("nnts").rename(outside)
    paths.metric("nnts").symlink_to(outside)
    manifest = json.loads(paths.manifest.read_text())
    manifest["models"]["../escape"] = manifest["models"]["lenet"]
    paths.manifest.write_text(json.dumps(manifest))
    malformed = write_run(root / "malformed", ["lenet"], thumbnails=False)
    manifest["models"] = {"lenet": {"probe_points": [{"name": "conv"}]}}
    malformed.manifest.write_text(json.dumps(manifest))
    monkeypatch.setenv(RUNS_ENV, str(root))
    return root


def test_links_and_names_do_not_lead_out_of_the_runs_directory(hostile_root: Path) -> None:
    (error,) = messages(open_page("views/nnts.py", "hostile"))["error"]
    assert "metrics/nnts.parquet" in error and "leads outside" in error
    at = open_page("views/samples.py", "hostile")
    at.selectbox(key="samples-model").set_value("../escape").run()
    assert not at.exception and any("'../escape' is not usable in a path" in e for e in messages(at)["error"])


def test_malformed_manifest_is_an_error_message(hostile_root: Path) -> None:
    at = open_page("views/nntp.py", "malformed")
    assert not at.exception
    assert messages(at)["error"] == ["Run 'malformed' cannot be shown: manifest.json: probe points of model 'lenet' need 'layer' and 'position' (KeyError('position'))."]


@pytest.mark.parametrize("role", ["sweep", "single", "subsampled"])
@pytest.mark.parametrize("page", PAGES)
def test_every_figure_says_what_it_is(page: str, role: str) -> None:
    """Exported PNG and HTML keep the layout title: it names the run and the number of samples."""
    at = open_page(page, RUNS[role])
    for spec in figures(at):
        title = spec["layout"]["title"]["text"]
        assert f"run {RUNS[role]}" in title or RUNS[role] in title, title
        assert f"n = {N_SAMPLES}" in title, title


def test_the_opening_run_is_the_newest_complete_one() -> None:
    at = open_page("views/runs.py")  # no ?run=: the running and the unreadable runs are newer than the sweep
    assert at.selectbox(key="run").value == RUNS["sweep"] and at.query_params["run"] == RUNS["sweep"]


def test_switching_runs_does_not_keep_a_stale_comparison() -> None:
    at = open_page("views/runs.py", RUNS["sweep"])
    at.multiselect(key=f"compare-{RUNS['sweep']}").set_value([RUNS["single"]]).run()
    at.selectbox(key="run").set_value(RUNS["single"]).run()
    (box,) = [m for m in at.multiselect if m.label == "Other runs"]
    assert box.value == [] and RUNS["single"] not in box.options and RUNS["sweep"] in box.options
    assert not [f for f in figures(at) if "Seconds per stage" in f["layout"]["title"]["text"]]


def test_runs_page_says_where_weights_came_from_in_both_manifest_forms() -> None:
    for role, weights, accuracy in (("single", "trained here", 0.875), ("sweep", "checkpoint file", None)):
        models = dataframe(open_page("views/runs.py", RUNS[role]), 1)
        assert set(models["weights"]) == {weights} and models["train_accuracy"].to_list() == [accuracy] * models.height


def test_run_list_fits_the_page() -> None:
    at = open_page("views/runs.py", RUNS["sweep"])
    listing = dataframe(at, 0)
    assert any(c.startswith(f"**{RUNS['unreadable']}** (unreadable): manifest.json") for c in texts(at))  # errors under the list
    assert listing.columns == ["run_dir", "status", "dataset", "models", "n_samples", "k", "size_mb", "seconds_total", "updated"]
    assert listing.filter(run_dir=RUNS["sweep"])["updated"].item() == "2026-11-05 10:00"


def test_a_manifest_with_config_oops_is_listed_unreadable_and_every_other_run_opens() -> None:
    at = open_page("views/runs.py", RUNS["oops"])
    listing = dataframe(at, 0)
    assert listing.filter(run_dir=RUNS["oops"])["status"].item() == "unreadable"
    assert messages(at)["error"] == [f"Run '{RUNS['oops']}' cannot be shown: manifest.json could not be read: config is 'oops', expected an object"]
    at.selectbox(key="run").set_value(RUNS["single"]).run()
    assert not at.exception and at.header[0].value == RUNS["single"]


def nnts_figure(at) -> dict:
    return figures(at)[0]


def test_nnts_colours_are_fixed_0_to_1_by_default_and_stretch_on_request() -> None:
    at = open_page("views/nnts.py", RUNS["single"])
    layout = nnts_figure(at)["layout"]
    assert (layout["coloraxis"]["cmin"], layout["coloraxis"]["cmax"]) == (0, 1) and "coloraxis2" not in layout
    at.toggle(key="nnts-stretch").set_value(True).run()
    assert "cmin" not in nnts_figure(at)["layout"]["coloraxis"]
    cka = [f for f in figures(open_page("views/layers.py", RUNS["sweep"])) if f["layout"]["title"]["text"].startswith("Linear CKA")][0]
    assert (cka["data"][0]["zmin"], cka["data"][0]["zmax"]) == (0, 1)


@pytest.mark.parametrize("page", ["views/nnts.py", "views/models.py"])
def test_relative_to_chance_has_one_colour_axis_per_k(page: str) -> None:
    at = open_page(page, RUNS["sweep"])
    at.radio(key=f"{'nnts' if 'nnts' in page else 'cross'}-scale").set_value("relative to chance").run()
    spec = nnts_figure(at)
    assert [t["coloraxis"] for t in spec["data"]] == ["coloraxis", "coloraxis2"]
    for axis, k in zip(("coloraxis", "coloraxis2"), KS):
        assert f"k = {k} only" in spec["layout"][axis]["colorbar"]["title"]["text"] and "cmax" not in spec["layout"][axis]
    assert any("One colour axis per k" in c for c in texts(at))


def test_nntp_page_annotates_thousands_on_a_log_scale_and_says_stretches(runs_root: Path) -> None:
    at = open_page("views/nntp.py", RUNS["single"])
    nntp = pl.read_parquet(RunPaths(runs_root / RUNS["single"]).metric("nntp")).filter(k=KS[0], alpha=0)
    counts, zeros = figures(at)[0]["data"]
    text = np.array(counts["text"], dtype=object)
    for row in nntp.iter_rows(named=True):
        a, b = LAYERS.index(row["layer_first"]), LAYERS.index(row["layer_last"])
        assert float(text[a, b]) == pytest.approx(row["n_pairs"] / 1000, abs=5e-4) and array(counts["z"])[a, b] == pytest.approx(np.log10(row["n_pairs"]))
    assert text[1, 0] == "" and np.isnan(array(zeros["z"])[1, 0])  # lower triangle: blank, not a grey 0
    shown = " ".join([*texts(at), *(f["layout"]["title"]["text"] for f in figures(at))])
    assert "stretches" in shown and " runs" not in shown.replace("runs directory", "")


def test_null_views_grey_out_and_p_values_in_scientific_notation(runs_root: Path) -> None:
    at = open_page("views/nnts.py", RUNS["sweep"])
    at.radio(key="nnts-show").set_value("p-value (permutation)").run()
    (trace,) = [t for t in nnts_figure(at)["data"] if t["meta"] == KS[0]]
    assert "3.2e-25" in np.array(trace["text"], dtype=object).ravel().tolist()
    at.radio(key="nnts-show").set_value("NNTS").run()
    at.selectbox(key="nnts-grey").set_value("where p ≥ 0.05").run()
    grey = [t for t in nnts_figure(at)["data"] if t["name"].startswith("not above the null")]
    assert len(grey) == len(KS) and all(np.isfinite(array(t["z"])).sum() == 2 * (len(LAYERS) - 1) for t in grey)
    null_table = next(df for df in at.dataframe if "p_value" in df.value.columns)
    assert json.loads(null_table.proto.columns)["p_value"]["type_config"]["format"] == "%.2e"  # 3.20e-25, not 0.000…


def test_per_class_reads_upwards_class_0_at_the_bottom() -> None:
    per_class = [f for f in figures(open_page("views/nnts.py", RUNS["sweep"])) if "by class" in f["layout"]["title"]["text"]][0]
    assert per_class["layout"]["yaxis"]["categoryarray"] == ["0", "1", "2"] and per_class["layout"]["yaxis"]["autorange"] is True


def test_per_layer_draws_chance_and_the_ceiling_of_label_agreement(runs_root: Path) -> None:
    at = open_page("views/layers.py", RUNS["subsampled"])
    stats = figures(at)[0]
    labels = pl.read_parquet(RunPaths(runs_root / RUNS["subsampled"]).samples)["label"].to_numpy()
    ceilings = [t["y"][0] for t in stats["data"] if t["name"] == "ceiling"]
    assert ceilings == pytest.approx([label_ceiling(labels, k) for k in KS])
    assert stats["layout"]["yaxis"]["title"]["text"] == "intrinsic dimension (TwoNN)"


def test_page_settings_come_from_the_url_and_go_back_to_it() -> None:
    at = open_page("views/nnts.py", RUNS["sweep"], model="lenet_b", k=str(KS[1]), form="overlap", scale="relative to chance")
    assert (at.selectbox(key="nnts-model").value, at.multiselect(key="nnts-k").value) == ("lenet_b", [KS[1]])
    assert (at.radio(key="nnts-form").value, at.radio(key="nnts-scale").value) == ("overlap", "relative to chance")
    assert "lenet_b" in nnts_figure(at)["layout"]["title"]["text"]
    at.radio(key="nnts-form").set_value("jaccard").run()
    at.multiselect(key="nnts-k").set_value(list(KS)).run()
    assert (at.query_params["form"], at.query_params["k"], at.query_params["model"]) == ("jaccard", ",".join(map(str, KS)), "lenet_b")


def test_null_view_settings_come_from_the_url() -> None:
    at = open_page("views/nnts.py", RUNS["sweep"], show="z vs permutation null", grey="where p ≥ 0.01")
    assert (at.radio(key="nnts-show").value, at.selectbox(key="nnts-grey").value) == ("z vs permutation null", "where p ≥ 0.01")
    assert nnts_figure(at)["layout"]["title"]["text"].startswith("NNTS: z vs permutation null")


def test_a_url_that_names_nothing_valid_falls_back_to_defaults() -> None:
    at = open_page("views/nnts.py", RUNS["sweep"], model="../x", k="999", form="bogus")
    assert not at.exception and at.selectbox(key="nnts-model").value == "lenet_a" and at.multiselect(key="nnts-k").value == list(KS)
