"""Compare results across runs under AppTest: curves and differences equal b − a computed from the files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fakerun import KS, LAYERS, RUNS
from pagetest import array, figures, messages, open_page

from nnts_ray.naming import RunPaths

pytestmark = pytest.mark.usefixtures("app_env")
PAGE = "views/compare.py"


def nnts_matrix(runs_root: Path, role: str, model: str, k: int, column: str = "jaccard") -> np.ndarray:
    nnts = pl.read_parquet(RunPaths(runs_root / RUNS[role]).metric("nnts")).filter(model_a=model, model_b=model, k=k)
    return np.array([[nnts.filter(layer_a=a, layer_b=b)[column].item() for b in LAYERS] for a in LAYERS])


def test_two_models_of_a_sweep_are_compared_by_default(runs_root: Path) -> None:
    at = open_page(PAGE, RUNS["sweep"])
    entries = [f"{RUNS['sweep']} · lenet_a", f"{RUNS['sweep']} · lenet_b"]
    assert at.multiselect(key="compare-entries").value == entries
    curves, difference = figures(at)
    a, b = nnts_matrix(runs_root, "sweep", "lenet_a", KS[0]), nnts_matrix(runs_root, "sweep", "lenet_b", KS[0])
    assert [t["name"] for t in curves["data"]] == entries
    assert array(curves["data"][0]["y"]).tolist() == pytest.approx(a[0].tolist())  # against the first probe point
    assert array(curves["data"][1]["y"]).tolist() == pytest.approx(b[0].tolist())
    (trace,) = difference["data"]
    np.testing.assert_allclose(array(trace["z"]), b - a)
    assert trace["zmid"] == 0 and trace["zmin"] == pytest.approx(-np.abs(b - a).max()) and trace["colorscale"][0][1] != trace["colorscale"][-1][1]


def test_two_runs_relative_to_chance_consecutive_pairs(runs_root: Path) -> None:
    entries = [f"{RUNS['single']} · lenet", f"{RUNS['subsampled']} · lenet"]
    at = open_page(PAGE, RUNS["single"], compare=",".join(entries), k=str(KS[1]), scale="relative to chance")
    assert at.multiselect(key="compare-entries").value == entries
    at.radio(key="compare-reference").set_value("between consecutive probe points").run()
    curves, difference = figures(at)
    ratio = {role: nnts_matrix(runs_root, role, "lenet", KS[1]) / nnts_matrix(runs_root, role, "lenet", KS[1], "chance_jaccard")
             for role in ("single", "subsampled")}
    assert array(curves["data"][1]["y"]).tolist() == pytest.approx([ratio["subsampled"][i, i + 1] for i in range(len(LAYERS) - 1)])
    assert list(curves["data"][1]["x"]) == list(LAYERS[1:])
    at.selectbox(key="compare-a").set_value(entries[1])
    at.selectbox(key="compare-b").set_value(entries[0]).run()
    np.testing.assert_allclose(array(figures(at)[1]["data"][0]["z"]), ratio["single"] - ratio["subsampled"])
    assert "k = 10" in figures(at)[1]["layout"]["title"]["text"] and "n = 60" in figures(at)[1]["layout"]["title"]["text"]


def test_fewer_than_two_is_a_hint_and_broken_runs_an_error() -> None:
    at = open_page(PAGE, RUNS["single"], compare=f"{RUNS['single']} · lenet")
    assert not figures(at) and messages(at)["info"][0].startswith("Pick two or more")
    at.multiselect(key="compare-entries").set_value([f"{RUNS['single']} · lenet", f"{RUNS['corrupt']} · lenet"]).run()
    assert not at.exception and any("metrics/nnts.parquet could not be read" in e for e in messages(at)["error"])
