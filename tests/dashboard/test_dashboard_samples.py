"""Single samples under AppTest: only existing ids are offered, every list follows the current k and pair,
and the gallery, histogram and 2-D map show the values of the run's files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fakerun import KS, LAYERS, RUNS, SUBSAMPLE_IDS, SUBSAMPLE_STORED
from pagetest import array, dataframe, figures, messages, open_page, texts, widget

from dashboard import clickthrough
from dashboard.figures.samples import EDGES
from dashboard.run import Run
from nnts_ray.naming import RunPaths

pytestmark = pytest.mark.usefixtures("app_env")
PAGE = "views/samples.py"


def shown_sample(at) -> int:
    """The sample the gallery shows, from its heading."""
    (heading,) = [h for h in texts(at) if h.startswith("Sample #")]
    return int(re.match(r"Sample #(\d+)", heading)[1])


def per_sample(runs_root: Path, role: str, model: str, k: int, a: str, b: str) -> pl.DataFrame:
    rows = pl.read_parquet(RunPaths(runs_root / RUNS[role]).metric("per_sample"))
    return rows.filter(model_a=model, model_b=model, k=k, layer_a=a, layer_b=b).sort("jaccard", "sample_id")


def test_a_subsampled_run_offers_only_the_ids_it_holds() -> None:
    at = open_page(PAGE, RUNS["subsampled"])
    ids = widget(at, "selectbox", "Sample id")
    assert ids.options == [f"#{i}" for i in SUBSAMPLE_IDS] and shown_sample(at) == SUBSAMPLE_IDS[0]
    widget(at, "selectbox", "Class").set_value(2).run()
    ids = widget(at, "selectbox", "Sample id")
    assert ids.options == [f"#{i}" for i in SUBSAMPLE_IDS[2::3]] and shown_sample(at) == SUBSAMPLE_IDS[2]
    ids.set_value(int(SUBSAMPLE_IDS[5])).run()
    assert shown_sample(at) == SUBSAMPLE_IDS[5] and not messages(at)["warning"] and not messages(at)["error"]
    assert at.query_params["sample"] == str(SUBSAMPLE_IDS[5]) and at.query_params["class"] == "2"


def test_at_random_draws_an_existing_sample() -> None:
    at = open_page(PAGE, RUNS["subsampled"])
    at.radio(key="samples-how").set_value("at random").run()
    drawn = {shown_sample(at)}
    for _ in range(3):
        at.button[0].click().run()
        drawn.add(shown_sample(at))
    assert drawn <= set(SUBSAMPLE_IDS.tolist()) and not messages(at)["warning"]


def test_a_shared_link_reopens_the_same_sample_and_k() -> None:
    chosen = int(SUBSAMPLE_IDS[17])
    at = open_page(PAGE, RUNS["subsampled"], sample=str(chosen), k=str(KS[0]))
    assert shown_sample(at) == chosen and widget(at, "selectbox", "Class").value == 17 % 3
    assert not messages(at)["warning"]


def test_k_is_offered_only_up_to_the_stored_ranks() -> None:
    assert at_k_options(RUNS["subsampled"]) == [SUBSAMPLE_STORED] and at_k_options(RUNS["sweep"]) == list(KS)


def at_k_options(run: str) -> list[int]:
    return [int(o) for o in open_page(PAGE, run).selectbox(key="samples-k").options]


def test_most_changed_follows_k_and_pair_and_shows_the_sample_it_names(runs_root: Path) -> None:
    """Issue 13: after changing k or the pair, the picker kept an old label next to another sample."""
    at = open_page(PAGE, RUNS["sweep"])
    at.radio(key="samples-how").set_value("most changed").run()
    for change in (lambda: at.selectbox(key="samples-k").set_value(KS[1]), lambda: at.selectbox(key="samples-layer-a").set_value("conv")):
        change().run()
        k, a = at.selectbox(key="samples-k").value, at.selectbox(key="samples-layer-a").value
        lowest = per_sample(runs_root, "sweep", "lenet_a", k, a, LAYERS[-1]).head(20)
        picker = widget(at, "selectbox", "Most changed")
        assert picker.options == [f"#{s} (Jaccard {j:.3f})" for s, j in lowest.select("sample_id", "jaccard").iter_rows()]
        assert picker.value == lowest["sample_id"][0] == shown_sample(at)
        picker.set_value(lowest["sample_id"][3]).run()
        assert shown_sample(at) == lowest["sample_id"][3]


def test_histogram_bins_list_the_samples_inside(runs_root: Path) -> None:
    at = open_page(PAGE, RUNS["sweep"])
    at.radio(key="samples-how").set_value("by Jaccard (histogram)").run()
    values = per_sample(runs_root, "sweep", "lenet_a", KS[0], LAYERS[0], LAYERS[-1])
    (bars,) = [f for f in figures(at) if "Per-sample Jaccard" in f["layout"]["title"]["text"]][0]["data"]
    counts, _ = np.histogram(values["jaccard"].to_numpy(), bins=EDGES)
    assert array(bars["y"]).tolist() == counts.tolist()
    box = widget(at, "selectbox", "Jaccard bin")
    fullest = int(np.argmax(counts))
    box.set_value(fullest).run()
    lo, hi = EDGES[fullest], EDGES[fullest + 1]
    inside = values.filter((pl.col("jaccard") >= lo) & (pl.col("jaccard") < hi))
    picker = widget(at, "selectbox", "Sample in the bin")
    assert picker.options == [f"#{s} (Jaccard {j:.3f})" for s, j in inside.select("sample_id", "jaccard").iter_rows()]
    assert shown_sample(at) == inside["sample_id"][0]


def test_per_class_click_through_opens_that_class_most_changed(runs_root: Path) -> None:
    run = Run.open(runs_root, RUNS["sweep"])
    link = clickthrough.samples_link(run, "lenet_b", KS[1], "relu", "logits", 1)
    at = open_page(PAGE, **link)
    labels = pl.read_parquet(RunPaths(runs_root / RUNS["sweep"]).samples).select("sample_id", "label")
    lowest = per_sample(runs_root, "sweep", "lenet_b", KS[1], "relu", "logits").join(labels, on="sample_id").filter(label=1).sort("jaccard", "sample_id").head(20)
    picker = widget(at, "selectbox", "Most changed")
    assert picker.options == [f"#{s} (Jaccard {j:.3f})" for s, j in lowest.select("sample_id", "jaccard").iter_rows()]
    assert shown_sample(at) == lowest["sample_id"][0] and at.selectbox(key="samples-model").value == "lenet_b"


def test_a_clicked_per_class_cell_switches_to_single_samples(monkeypatch: pytest.MonkeyPatch, runs_root: Path) -> None:
    calls = []
    monkeypatch.setattr(clickthrough.st, "switch_page", lambda page, query_params: calls.append((page, query_params)))
    run = Run.open(runs_root, RUNS["sweep"])
    clickthrough.from_per_class(run, "lenet_a", KS[0], {"x": "conv → relu", "y": "2", "z": 0.4})
    clickthrough.from_per_class(run, "lenet_a", KS[0], None)
    assert calls == [(clickthrough.SAMPLES_PAGE, clickthrough.samples_link(run, "lenet_a", KS[0], "conv", "relu", "2"))]


def test_gallery_marks_other_classes_and_shows_distances(runs_root: Path) -> None:
    paths = RunPaths(runs_root / RUNS["sweep"])
    labels = dict(pl.read_parquet(paths.samples).select("sample_id", "label").iter_rows())
    stored = pl.read_parquet(paths.neighbours_dir("lenet_a", LAYERS[0]) / "*.parquet").filter(pl.col("rank") < KS[0])
    mixed = stored.with_columns(other=pl.col("neighbour_id").replace_strict(labels) != pl.col("sample_id").replace_strict(labels))
    sample = mixed.group_by("sample_id").agg(pl.col("other").sum()).sort("other", "sample_id", descending=[True, False])["sample_id"][0]
    at = open_page(PAGE, RUNS["sweep"], sample=str(sample))
    table = dataframe(at, 0)
    assert table["other_class"].to_list() == [labels[n] != labels[sample] for n in table["neighbour_id"]]
    html = at.html[0].value
    assert html.count('data-different="1"') == table["other_class"].sum() > 0
    assert html.count('data-different="0"') == 1 + (~table["other_class"]).sum()  # the sample itself is never 'different'
    assert all(f"d {d:.3g}<" in html for d in table["distance"])


def test_the_map_marks_the_sample_and_says_when_a_run_has_none(runs_root: Path) -> None:
    at = open_page(PAGE, RUNS["sweep"], sample="4")
    (pca,) = [f for f in figures(at) if f["layout"]["title"]["text"].startswith("PCA maps")]
    embedding = pl.read_parquet(RunPaths(runs_root / RUNS["sweep"]).metric("embedding")).filter(model="lenet_a", sample_id=4, layer=LAYERS[0])
    star = next(t for t in pca["data"] if t["name"] == "sample #4")
    assert (array(star["x"])[0], array(star["y"])[0]) == pytest.approx((embedding["x"].item(), embedding["y"].item()))
    single = open_page(PAGE, RUNS["single"])
    assert "2-D maps (metrics/embedding.parquet, the first two principal components): not computed in this run." in messages(single)["info"]
