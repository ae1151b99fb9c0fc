"""Loaders: where per-sample values come from, what they refuse, and that they never warn outside the server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_pair_values_are_every_sample_from_per_sample_lowest_first(run: RunPaths) -> None:
    values, every = loaders.pair_values(run.root, "lenet", KS[0], LAYERS[-1], LAYERS[0])  # either order of the pair
    per_sample = pl.read_parquet(run.metric("per_sample")).filter(layer_a=LAYERS[0], layer_b=LAYERS[-1], k=KS[0]).sort("jaccard", "sample_id")
    assert every and values.rows() == per_sample.select("sample_id", "jaccard").rows()


def test_pair_values_fall_back_to_the_most_changed_table(tmp_path: Path) -> None:
    paths = write_run(tmp_path / "run", ["lenet"], thumbnails=False, extras=("most_changed",))
    paths.metric("per_sample").unlink()
    values, every = loaders.pair_values(paths.root, "lenet", KS[0], "conv", "input")
    expected = pl.read_parquet(paths.metric("most_changed")).filter(layer_a="input", layer_b="conv", k=KS[0]).sort("rank")
    assert not every and values.rows() == expected.select("sample_id", "jaccard").rows()


def test_embedding_is_read_per_model_and_its_absence_is_missing_not_broken(run: RunPaths, tmp_path: Path) -> None:
    with pytest.raises(loaders.MissingTable, match="metrics/embedding.parquet is not in this run"):
        loaders.embedding(run.root, "lenet")
    paths = write_run(tmp_path / "run", ["a", "b"], thumbnails=False, extras=("embedding",))
    assert set(loaders.embedding(paths.root, "b")["layer"]) == set(LAYERS) and loaders.embedding(paths.root, "b").height == len(LAYERS) * 60
    write_parquet(pl.DataFrame({"model": ["a"], "layer": ["input"]}).to_arrow(), paths.metric("embedding"))
    with pytest.raises(loaders.DataError, match=r"lacks the columns \['sample_id', 'x', 'y'\]"):
        loaders.embedding(paths.root, "a")


def test_required_columns_come_from_the_schemas() -> None:
    from nnts_ray import schemas

    assert loaders.TABLES["cka"] is schemas.CKA and loaders.TABLES["embedding"] is schemas.EMBEDDING


def test_a_manifest_linked_out_of_its_run_is_refused(tmp_path: Path) -> None:
    paths = write_run(tmp_path / "runs" / "run", ["lenet"], thumbnails=False)
    outside = tmp_path / "elsewhere.json"
    outside.write_text(paths.manifest.read_text())
    paths.manifest.unlink()
    paths.manifest.symlink_to(outside)
    with pytest.raises(loaders.DataError, match="manifest.json could not be read: .*leads outside"):
        loaders.manifest(paths.root)


def test_a_manifest_field_of_the_wrong_type_is_a_data_error(tmp_path: Path) -> None:
    paths = write_run(tmp_path / "run", ["lenet"], thumbnails=False)
    paths.manifest.write_text(json.dumps({**json.loads(paths.manifest.read_text()), "config": "oops"}))
    with pytest.raises(loaders.DataError, match="manifest.json could not be read: config is 'oops', expected an object"):
        loaders.manifest(paths.root)


def test_report_command_prints_no_warning(run: RunPaths, tmp_path: Path) -> None:
    """Outside the server the cached readers are plain calls: Streamlit's "No runtime found" is never logged."""
    done = subprocess.run([sys.executable, "-m", "dashboard.report", str(run.root), "-o", str(tmp_path / "r.html")],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert done.returncode == 0 and done.stderr == "" and done.stdout == ""


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
