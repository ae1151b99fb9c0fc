"""Approximate search is explicit, and the recall it records is the recall an exact reference measures."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from sklearn.neighbors import NearestNeighbors

from nnts_ray.cli import load_config
from nnts_ray.naming import RunPaths
from nnts_ray.pipeline import run

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_ivf_recall_is_measured_and_true(ray_cluster, tmp_path):
    rc = load_config([f"run_dir={tmp_path}/ivf", f"paths.cache_dir={tmp_path}/cache", "dataset.n_samples=500",
                      "k=[10]", "model.train.epochs=1", "model.probes=[input,P1,O]", "metrics.cka=false",
                      "knn.index='IVF16,Flat'", "knn.search_params='nprobe=2'", "knn.recall_sample=500"])
    run(rc)
    paths = RunPaths(rc.run_dir)
    index = json.loads(paths.manifest.read_text())["conventions"]["index"]
    assert index["type"] == "approximate" and index["factory"] == "IVF16,Flat"
    for layer in ("input", "P1", "O"):
        x = np.load(paths.activations("lenet5", layer))
        _, idx = NearestNeighbors(n_neighbors=11, algorithm="brute").fit(x).kneighbors(x)
        exact = [set(r[r != i][:10]) for i, r in enumerate(idx)]
        t = pl.read_parquet(paths.neighbours_dir("lenet5", layer) / "*.parquet").sort("sample_id", "rank")
        written = t["neighbour_id"].to_numpy().reshape(500, 10)
        sample_ids = pl.read_parquet(paths.samples)["sample_id"].to_numpy()
        rows = np.searchsorted(sample_ids, written)
        recall = np.mean([len(set(r) & e) / 10 for r, e in zip(rows, exact)])
        assert index["recall"][f"lenet5/{layer}"] == pytest.approx(recall, abs=0.01)  # ties aside
        assert 0.2 < recall < 1.0 or layer == "O"
        assert not (t["sample_id"] == t["neighbour_id"]).any()
