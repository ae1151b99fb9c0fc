"""End to end on the embedded default (digits + LeNet-5) in the session's real Ray cluster:
the files and schemas a run leaves, neighbours against exact references, metrics against sets."""

from __future__ import annotations

import json
import os

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from sklearn.neighbors import NearestNeighbors

from nnts_ray.cli import load_config
from nnts_ray.config import ConfigError
from nnts_ray.naming import RunPaths
from nnts_ray.pipeline import run
from nnts_ray.schemas import LAYERS, NEIGHBOURS, NNTP, NNTS, PER_SAMPLE
from tests.reference import assert_same_neighbours, brute_force_knn
from tests.reference import jaccard_reference, runs_reference, undirected_edges

PAPER_PROBES = ["input", "C0", "R0", "P0", "C1", "R1", "P1", "C2", "R2", "M3", "R3", "O"]

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def default_run(ray_cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    rc = load_config([f"run_dir={root}/run", f"paths.cache_dir={root}/cache"])
    result = run(rc)
    assert not result.already_complete
    return rc, RunPaths(rc.run_dir)


def _neighbour_sets(paths: RunPaths, layer: str, k: int) -> dict[int, set]:
    t = pl.read_parquet(paths.neighbours_dir("lenet5", layer) / "*.parquet").filter(pl.col("rank") < k)
    return {sid: set(v) for sid, v in t.group_by("sample_id").agg("neighbour_id").iter_rows()}


def test_run_directory_holds_every_table_of_the_contract(default_run):
    rc, paths = default_run
    manifest = json.loads(paths.manifest.read_text())
    assert manifest["status"] == "complete" and manifest["n_samples"] == 1797
    for key in ("metric", "k", "self_exclusion", "tie_rule", "dtype", "index"):
        assert key in manifest["conventions"]
    assert {"torch", "ray", "polars", "pyarrow", "numpy"} <= set(manifest["versions"])
    points = manifest["models"]["lenet5"]["probe_points"]
    assert [p["layer"] for p in points] == PAPER_PROBES
    assert [p["dim"] for p in points] == [1024, 4704, 4704, 1176, 1600, 1600, 400, 120, 120, 84, 84, 10]
    assert all(manifest["stages"][s]["status"] == "complete" for s in ("samples", "activations", "neighbours", "metrics"))

    samples = pq.read_table(paths.samples)
    assert samples.schema.field("sample_id").type == "int64" and samples.schema.field("label").type == "int64"
    assert samples.column("sample_id").to_pylist() == list(range(1797))

    for layer in PAPER_PROBES:
        d = paths.neighbours_dir("lenet5", layer)
        assert all(f.suffix == ".parquet" for f in d.iterdir()), list(d.iterdir())
        t = pq.read_table(list(d.iterdir())[0])
        assert t.schema.equals(NEIGHBOURS, check_metadata=False)
    for name, schema in [("nnts", NNTS), ("nntp", NNTP), ("per_sample", PER_SAMPLE), ("layers", LAYERS)]:
        got = pq.read_schema(paths.metric(name))  # layers.parquet may add per-layer statistics
        assert got.names[: len(schema.names)] == schema.names, (name, got.names)
        assert all(got.field(f).type == schema.field(f).type for f in schema.names)


def test_every_sample_has_exactly_k_neighbours_never_itself(default_run):
    rc, paths = default_run
    t = pl.read_parquet(paths.neighbours_dir("lenet5", "R1") / "*.parquet")
    assert t.height == 1797 * 100
    per = t.group_by("sample_id").agg(pl.col("rank").sort(), pl.col("neighbour_id").n_unique())
    assert per["neighbour_id"].unique().to_list() == [100]
    assert per["rank"].to_list()[0] == list(range(100))
    assert t.filter(pl.col("sample_id") == pl.col("neighbour_id")).height == 0
    assert (t.sort("sample_id", "rank").group_by("sample_id", maintain_order=True)
            .agg(pl.col("distance").diff().min())["distance"].drop_nulls() >= 0).all()


@pytest.mark.parametrize("layer", ["input", "C0", "P1", "M3", "O"])
def test_neighbours_match_exact_references(default_run, layer):
    rc, paths = default_run
    x = np.load(paths.activations("lenet5", layer))
    t = pl.read_parquet(paths.neighbours_dir("lenet5", layer) / "*.parquet").sort("sample_id", "rank")
    rows = t["neighbour_id"].to_numpy().reshape(1797, 100)
    dist = t["distance"].to_numpy().reshape(1797, 100)
    if x.shape[1] <= 400:  # the numpy/stable-sort reference
        ref_rows, ref_dist = brute_force_knn(x, 100)
    else:  # scikit-learn's exact brute force for the wide layers
        d, i = NearestNeighbors(n_neighbors=101, algorithm="brute").fit(x).kneighbors(x)
        keep = i != np.arange(len(x))[:, None]
        ref_rows = np.array([r[m][:100] for r, m in zip(i, keep)])
        ref_dist = np.array([r[m][:100] for r, m in zip(d, keep)])
    assert_same_neighbours(rows, dist, ref_rows, ref_dist, rtol=2e-4, atol=2e-4)


def test_metrics_match_sets_built_from_the_tables(default_run):
    rc, paths = default_run
    nnts = pl.read_parquet(paths.metric("nnts"))
    for k in (15, 100):
        sets = {layer: _neighbour_sets(paths, layer, k) for layer in PAPER_PROBES}
        ids = sorted(sets["input"])
        for a, b in [("input", "C0"), ("C0", "R0"), ("P1", "C2"), ("input", "O"), ("M3", "O")]:
            jac, ovl, _ = jaccard_reference([sets[a][i] for i in ids], [sets[b][i] for i in ids])
            row = nnts.filter(k=k, layer_a=a, layer_b=b)
            assert row["jaccard"][0] == pytest.approx(jac, abs=1e-12)
            assert row["overlap"][0] == pytest.approx(ovl, abs=1e-12)
    sets15 = [_neighbour_sets(paths, layer, 15) for layer in PAPER_PROBES]
    edges = [undirected_edges([s[i] for i in sorted(s)], sorted(s)) for s in sets15]
    want = runs_reference(edges, alpha=0)
    got = {(PAPER_PROBES.index(f), PAPER_PROBES.index(l)): c for f, l, c in
           pl.read_parquet(paths.metric("nntp")).filter(k=15, alpha=0)
           .select("layer_first", "layer_last", "n_pairs").iter_rows()}
    assert got == want


def test_paper_findings_hold_qualitatively(default_run):
    rc, paths = default_run
    j = {(a, b): v for a, b, v in pl.read_parquet(paths.metric("nnts")).filter(k=15)
         .select("layer_a", "layer_b", "jaccard").iter_rows()}
    # block-diagonal: conv -> ReLU -> pool of one conventional layer are closer than across layers
    assert j[("C0", "R0")] > j[("R0", "C1")] and j[("C1", "R1")] > j[("R1", "C2")]
    # similarity decays with distance between probe points
    assert j[("input", "C0")] > j[("input", "C1")] > j[("input", "C2")] > j[("input", "O")]
    nntp = pl.read_parquet(paths.metric("nntp")).filter(k=15, alpha=0)
    through = nntp.filter(layer_first="input", layer_last="O")["n_pairs"][0]
    assert 0 < through < nntp["n_pairs"].sum() / 2  # a small set persists from input to output


def _mtimes(paths: RunPaths) -> dict:
    """Every file of the run (the lock is a flock on the directory: it writes nothing)."""
    return {p: p.stat().st_mtime_ns for p in paths.root.rglob("*") if p.is_file()}


def test_same_config_again_reports_the_finished_run(default_run):
    rc, paths = default_run
    before = _mtimes(paths)
    assert run(rc).already_complete
    assert before == _mtimes(paths)


def test_different_config_in_a_finished_run_dir_is_refused_untouched(default_run):
    rc, paths = default_run
    before = _mtimes(paths)
    other = load_config([f"run_dir={rc.run_dir}", f"paths.cache_dir={rc.paths.cache_dir}", "k=[15]"])
    with pytest.raises(ConfigError, match="different configuration"):
        run(other)
    assert before == _mtimes(paths)


def test_analysis_suite_tables_are_in_the_default_run(default_run):
    rc, paths = default_run
    layers = pl.read_parquet(paths.metric("layers")).sort("position")
    assert layers["layer"].to_list() == PAPER_PROBES
    for col in ("twonn_id", "label_agreement_k15", "label_agreement_k100", "label_agreement_chance"):
        assert layers[col].null_count() == 0, col
    # label agreement at O, k=15, recomputed from the neighbour table and samples.parquet
    labels = pl.read_parquet(paths.samples).select("sample_id", "label")
    t = pl.read_parquet(paths.neighbours_dir("lenet5", "O") / "*.parquet").filter(pl.col("rank") < 15)
    t = t.join(labels, on="sample_id").join(labels.rename({"sample_id": "neighbour_id", "label": "nl"}), on="neighbour_id")
    want = (t["label"] == t["nl"]).mean()
    assert layers.filter(layer="O")["label_agreement_k15"][0] == pytest.approx(want, abs=1e-12)
    assert layers.filter(layer="O")["label_agreement_k15"][0] > layers.filter(layer="input")["label_agreement_k15"][0]
    for name in ("cka", "per_class", "most_changed", "nntp_partners", "monotonicity", "embedding"):
        assert pl.read_parquet(paths.metric(name)).height > 0, name
    # Σ persistent partners = 2 · T[input, O] (each persistent pair counted at both of its samples)
    partners = pl.read_parquet(paths.metric("nntp_partners")).filter(k=15)["persistent_partners"].sum()
    through = pl.read_parquet(paths.metric("nntp")).filter(k=15, alpha=0, layer_first="input", layer_last="O")
    assert partners == 2 * through["n_pairs"][0]
    mono = pl.read_parquet(paths.metric("monotonicity"))
    assert (mono["spearman_rho"] < -0.5).all()  # similarity decays with distance between probe points


def test_run_lock_is_exclusive_writes_nothing_and_names_the_owner(tmp_path):
    from nnts_ray.io import RunDirInUse, RunLock

    first, second = RunLock(tmp_path / "run"), RunLock(tmp_path / "run")
    first.acquire()
    with pytest.raises(RunDirInUse, match=rf"in use by pid {os.getpid()};"):
        second.acquire()  # flock is per open file: a second open in this process conflicts like another process
    first.release()
    second.acquire()  # released: taken over
    second.release()
    assert list((tmp_path / "run").iterdir()) == []


def test_analysis_reads_the_tables_whatever_its_neighbour_cache_keeps(default_run, monkeypatch):
    """With a cache that keeps one probe point at a time, neighbours read in any order (again,
    after eviction) are still each table's first k ranks by sample."""
    from types import SimpleNamespace

    from nnts_ray.plan import make_plan
    from nnts_ray.stages import metrics as stage

    rc, paths = default_run
    monkeypatch.setattr(stage, "NEIGHBOUR_CACHE_BYTES", 1)
    plan = make_plan(rc)
    empty = SimpleNamespace(nnts=pl.DataFrame(), per_sample=pl.DataFrame({"k": []}, schema={"k": pl.Int64}))
    inputs = stage._analysis_inputs(plan, paths, empty)
    probes = {p.layer: p for p in plan.probes}
    for layer in ("O", "input", "O", "C1", "input"):
        ids, dist = inputs.neighbours(probes[layer], 15)
        t = (pl.read_parquet(paths.neighbours_dir("lenet5", layer) / "*.parquet").filter(pl.col("rank") < 15)
             .sort("sample_id", "rank"))
        assert np.array_equal(ids, t["neighbour_id"].to_numpy().reshape(-1, 15)), layer
        assert np.array_equal(dist, t["distance"].to_numpy().reshape(-1, 15)), layer
