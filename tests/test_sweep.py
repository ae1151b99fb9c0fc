"""A model-zoo sweep as one run: four architectures (two built-in, two torchvision) on digits, cross-model
NNTS against a brute-force reference computed from the run's own activations, and activation reuse
by a later run. Two pipeline runs in all (the session's Ray cluster)."""

from __future__ import annotations

import json
from itertools import combinations

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from nnts_ray.cli import load_config
from nnts_ray.naming import RunPaths
from nnts_ray.pipeline import run
from tests.reference import brute_force_knn
from tests.reference import jaccard_reference

pytestmark = [pytest.mark.ray, pytest.mark.slow]

PROBES = {  # a few probe points per model keep the test fast; the experiment's own selection is
    "lenet5": ["input", "C1", "M3", "O"],  # checked offline in tests/models/test_model_configs.py
    "small_resnet": ["input", "stage2.relu2", "pool", "fc"],
    "resnet18": ["layer2", "avgpool", "fc"],
    "mobilenet_v3_small": ["features.3", "avgpool", "classifier"],
}


def _config(root, run_name: str, models: list[str] | None = None):
    rc = load_config(["experiment=zoo_digits", f"paths.runs_root={root}/runs", f"paths.cache_dir={root}/cache",
                      f"run_dir={root}/runs/{run_name}", "dataset.n_samples=300", "k=[5,15]"])
    rc.models = [m for m in rc.models if models is None or m.name in models]
    for m in rc.models:
        m.probes = PROBES[m.name]
        m.train.epochs = 1
    return rc


@pytest.fixture(scope="module")
def zoo(ray_cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    rc = _config(root, "zoo")
    assert not run(rc).already_complete
    return root, rc, RunPaths(rc.run_dir)


def _reference_sets(paths: RunPaths, model: str, layer: str, k: int, ids: np.ndarray) -> list[set]:
    rows, _ = brute_force_knn(np.load(paths.activations(model, layer)), k)  # rows in sample_id order
    return [set(ids[r]) for r in rows]


def test_sweep_writes_every_model_and_every_cross_model_pair(zoo):
    _, rc, paths = zoo
    manifest = json.loads(paths.manifest.read_text())
    assert manifest["status"] == "complete" and list(manifest["models"]) == list(PROBES)
    for name, layers in PROBES.items():
        assert [p["layer"] for p in manifest["models"][name]["probe_points"]] == layers
    nnts = pl.read_parquet(paths.metric("nnts"))
    cross = nnts.filter(pl.col("model_a") != pl.col("model_b"))
    pairs = {frozenset(p) for p in cross.select("model_a", "model_b").unique().iter_rows()}
    assert pairs == {frozenset(p) for p in combinations(PROBES, 2)}
    n_probes = {m: len(v) for m, v in PROBES.items()}
    for k in (5, 15):
        per_k = cross.filter(k=k).select("model_a", "layer_a", "model_b", "layer_b").unique()
        got = {frozenset([(a, la), (b, lb)]) for a, la, b, lb in per_k.iter_rows()}
        assert len(got) == sum(n_probes[a] * n_probes[b] for a, b in combinations(PROBES, 2))


@pytest.mark.parametrize("a, b", [
    (("lenet5", "O"), ("resnet18", "fc")),
    (("small_resnet", "pool"), ("mobilenet_v3_small", "avgpool")),
    (("lenet5", "M3"), ("small_resnet", "stage2.relu2")),
    (("resnet18", "layer2"), ("mobilenet_v3_small", "classifier")),
])
def test_cross_model_nnts_equals_brute_force_on_the_activations(zoo, a, b):
    _, rc, paths = zoo
    ids = pq.read_table(paths.samples, columns=["sample_id"]).column("sample_id").to_numpy()
    nnts = pl.read_parquet(paths.metric("nnts"))
    for k in (5, 15):
        sets_a = _reference_sets(paths, *a, k, ids)
        sets_b = _reference_sets(paths, *b, k, ids)
        jac, ovl, _ = jaccard_reference(sets_a, sets_b)
        row = nnts.filter(k=k, model_a=a[0], layer_a=a[1], model_b=b[0], layer_b=b[1])
        if row.height == 0:
            row = nnts.filter(k=k, model_a=b[0], layer_a=b[1], model_b=a[0], layer_b=a[1])
        assert row.height == 1
        assert row["jaccard"][0] == pytest.approx(jac, abs=1e-12)
        assert row["overlap"][0] == pytest.approx(ovl, abs=1e-12)
        assert row["n_samples"][0] == 300


def test_later_run_links_the_activations_instead_of_recomputing(zoo):
    root, first_rc, first = zoo
    rc = _config(root, "resnet_only", models=["resnet18"])
    rc.models[0].name = "resnet18_again"
    rc.models[0].probes = ["avgpool", "fc"]  # a subset of what the first run recorded
    run(rc)
    paths = RunPaths(rc.run_dir)
    manifest = json.loads(paths.manifest.read_text())
    assert manifest["models"]["resnet18_again"]["activations_reused_from"] == str(first.root)
    for layer in ("avgpool", "fc"):
        mine, theirs = paths.activations("resnet18_again", layer), first.activations("resnet18", layer)
        assert mine.stat().st_ino == theirs.stat().st_ino  # a hard link, not a recomputation
    again = pl.read_parquet(paths.metric("nnts")).filter(layer_a="avgpool", layer_b="fc").sort("k")
    before = pl.read_parquet(first.metric("nnts")).filter(model_a="resnet18", model_b="resnet18",
                                                          layer_a="avgpool", layer_b="fc").sort("k")
    assert again["jaccard"].to_list() == before["jaccard"].to_list()


def test_identical_features_are_searched_once_and_linked(zoo):
    """Every model's `input` is the same matrix: searched for the first model, linked for the next."""
    _, rc, paths = zoo
    first, second = (paths.neighbours_part(m, "input", 0) for m in ("lenet5", "small_resnet"))
    assert first.stat().st_ino == second.stat().st_ino
    marker = json.loads(paths.marker("neighbours", "small_resnet", "input", "part-00000").read_text())
    assert marker["same_as"] == "lenet5/input"
    row = pl.read_parquet(paths.metric("nnts")).filter(model_a="lenet5", layer_a="input", model_b="small_resnet",
                                                       layer_b="input", k=15)
    assert row["jaccard"][0] == 1.0
