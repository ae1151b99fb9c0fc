"""Loaders: the forms of optional tables they accept, where 'most changed' comes from, what they refuse."""

from __future__ import annotations


import polars as pl
import pytest
from fakerun import KS, LAYERS, write_run

from dashboard import loaders
from nnts_ray.io import write_parquet
from nnts_ray.naming import RunPaths


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunPaths:
    """A single-model run whose most_changed.parquet names sample 42 first for input → conv only."""
    paths = write_run(tmp_path_factory.mktemp("runs") / "run", ["lenet"], thumbnails=False)
    rows = {"model": ["lenet"], "layer_a": ["input"], "layer_b": ["conv"], "k": [KS[0]], "rank": [0], "sample_id": [42], "jaccard": [0.0]}
    write_parquet(pl.DataFrame(rows).to_arrow(), paths.metric("most_changed"))
    return paths


def test_most_changed_prefers_the_precomputed_table(run: RunPaths) -> None:
    changed = loaders.most_changed(run.root, "lenet", KS[0], "conv", "input")  # either order of the pair
    assert changed.rows() == [(42, 0.0)]


def test_most_changed_falls_back_to_per_sample_for_other_pairs(run: RunPaths) -> None:
    changed = loaders.most_changed(run.root, "lenet", KS[0], LAYERS[0], LAYERS[-1], n=5)
    per_sample = pl.read_parquet(run.metric("per_sample")).filter(layer_a=LAYERS[0], layer_b=LAYERS[-1], k=KS[0]).sort("jaccard", "sample_id")
    assert changed.rows() == per_sample.select("sample_id", "jaccard").head(5).rows()


def test_cka_per_model_form_is_read_as_pairs(run: RunPaths) -> None:
    write_parquet(pl.DataFrame({"model": ["lenet"], "layer_a": ["input"], "layer_b": ["conv"], "cka": [0.5]}).to_arrow(), run.metric("cka"))
    cka = loaders.table(run.root, "cka")
    assert cka.select("model_a", "layer_a", "model_b", "layer_b", "cka").rows() == [("lenet", "input", "lenet", "conv", 0.5)]


def test_a_table_without_the_columns_read_is_a_data_error(run: RunPaths) -> None:
    write_parquet(pl.DataFrame({"model": ["lenet"], "k": [5]}).to_arrow(), run.metric("nntp"))
    with pytest.raises(loaders.DataError, match=r"metrics/nntp.parquet lacks the columns \['layer_first'"):
        loaders.table(run.root, "nntp")


def test_a_table_rewritten_meanwhile_is_read_again(run: RunPaths) -> None:
    before = loaders.table(run.root, "nnts")
    write_parquet(before.head(3).to_arrow(), run.metric("nnts"))
    assert loaders.table(run.root, "nnts").height == 3 != before.height


def test_run_path_refuses_folders_that_are_not_runs(run: RunPaths) -> None:
    with pytest.raises(loaders.DataError, match="has no manifest.json"):
        loaders.run_path(run.root.parent, ".")
    with pytest.raises(loaders.DataError, match="leads outside"):
        loaders.run_path(run.root, "..")
