"""The run catalog: what it finds below a runs root, what it reads, and which paths it refuses."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest
from fakerun import KS, N_SAMPLES, RUNS

from nnts_ray import catalog


def test_scan_lists_every_run_once_relative_to_root(runs_root: Path) -> None:
    table = catalog.scan(runs_root)
    assert sorted(table["run_dir"]) == sorted(RUNS.values())  # 'notes/' holds no manifest: not a run
    assert table.schema == catalog.SCHEMA


def test_scan_reads_the_manifest_fields(runs_root: Path) -> None:
    rows = {r["run_dir"]: r for r in catalog.scan(runs_root).iter_rows(named=True)}
    sweep = rows[RUNS["sweep"]]
    assert (sweep["status"], sweep["dataset"], sweep["models"], sweep["n_samples"], sweep["k"]) == ("complete", "digits", ["lenet_a", "lenet_b"], N_SAMPLES, list(KS))
    assert sweep["seconds_total"] == pytest.approx(6.0)
    assert [s["stage"] for s in sweep["stages"]] == ["samples", "activations", "neighbours", "metrics"]
    on_disk = sum(p.stat().st_size for p in (runs_root / RUNS["sweep"]).rglob("*") if p.is_file())
    assert sweep["size_bytes"] == on_disk
    running = rows[RUNS["running"]]
    assert running["status"] == "running" and [s["status"] for s in running["stages"]][-1] == "running"


def test_unreadable_manifest_is_a_row_with_its_reason(runs_root: Path) -> None:
    row = catalog.scan(runs_root).filter(pl.col("run_dir") == RUNS["unreadable"]).row(0, named=True)
    assert row["status"] == catalog.UNREADABLE
    assert row["error"].startswith("manifest.json:")


def test_scan_stops_at_a_run_and_skips_hidden_and_private_folders(tmp_path: Path) -> None:
    (tmp_path / "run" / "activations" / "inner").mkdir(parents=True)
    for manifest in (tmp_path / "run", tmp_path / "run" / "activations" / "inner"):
        (manifest / "manifest.json").write_text(json.dumps({"status": "complete"}))
    for hidden in (".trash", "_tmp"):
        (tmp_path / hidden).mkdir()
        (tmp_path / hidden / "manifest.json").write_text("{}")
    assert catalog.scan(tmp_path)["run_dir"].to_list() == ["run"]


def test_empty_root_gives_an_empty_catalog(tmp_path: Path) -> None:
    table = catalog.scan(tmp_path)
    assert table.is_empty() and table.schema == catalog.SCHEMA


def test_resolve_inside_accepts_runs_below_root(runs_root: Path) -> None:
    assert catalog.resolve_inside(runs_root, RUNS["running"]) == (runs_root / RUNS["running"]).resolve()


@pytest.mark.parametrize("escape", ["..", "../..", "../../etc", "/etc", "nested/../../x"])
def test_resolve_inside_refuses_escapes(runs_root: Path, escape: str) -> None:
    with pytest.raises(catalog.PathRefused, match="leads outside"):
        catalog.resolve_inside(runs_root, escape)


def test_resolve_inside_refuses_a_symlink_out_of_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "runs", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    os.symlink(outside, root / "link")
    with pytest.raises(catalog.PathRefused):
        catalog.resolve_inside(root, "link")


@pytest.mark.parametrize("field", [{"config": "oops"}, {"models": ["lenet"]}, {"stages": {"samples": "done"}}, {"config": {"k": "oops"}},
                                   {"conventions": {"k": "oops"}}, {"n_samples": "many"}, {"models": {"lenet": 3}},
                                   {"config": {"dataset": "digits"}}, {"stages": {"samples": {"seconds": "slow"}}}, [1, 2]])
def test_a_field_of_the_wrong_type_makes_that_run_unreadable_and_keeps_the_rest(tmp_path: Path, field: dict | list) -> None:
    for name in ("good", "bad"):
        (tmp_path / name).mkdir()
    (tmp_path / "good" / "manifest.json").write_text(json.dumps({"status": "complete", "config": {"dataset": {"name": "digits"}}, "n_samples": 5}))
    (tmp_path / "bad" / "manifest.json").write_text(json.dumps({"status": "complete", **field} if isinstance(field, dict) else field))
    rows = {r["run_dir"]: r for r in catalog.scan(tmp_path).iter_rows(named=True)}
    assert (rows["good"]["status"], rows["good"]["dataset"], rows["good"]["n_samples"]) == ("complete", "digits", 5)
    assert rows["bad"]["status"] == catalog.UNREADABLE and rows["bad"]["error"].startswith("manifest.json")


def test_a_manifest_linked_from_outside_the_run_is_refused_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "secret.json"
    outside.write_text(json.dumps({"status": "complete", "fingerprint": "stolen", "config": {"dataset": {"name": "secret"}}}))
    (tmp_path / "runs" / "linked").mkdir(parents=True)
    (tmp_path / "runs" / "linked" / "manifest.json").symlink_to(outside)
    (row,) = catalog.scan(tmp_path / "runs").iter_rows(named=True)
    assert row["status"] == catalog.UNREADABLE and "leads outside" in row["error"] and row["fingerprint"] is None
    with pytest.raises(catalog.ManifestError, match="leads outside"):
        catalog.read_manifest(tmp_path / "runs" / "linked")
