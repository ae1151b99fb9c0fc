"""The `nnts-ray` command as users run it: a real subprocess, one-line errors, nothing overwritten."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nnts_ray.models.lenet import LeNet5

pytestmark = pytest.mark.slow


def nnts_ray(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("nnts-ray")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [l for l in proc.stderr.splitlines() if l.startswith("nnts-ray: error:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize(
    "override, expected",
    [
        ("knn.metricz=l2", "unknown config key 'knn.metricz'; valid keys there: metric, index"),
        ("+model.depth=3", "unknown config key 'model.depth'"),
        ("knn.metric=l3", "knn.metric='l3' is not allowed; choose one of: l2, cosine"),
        ("dataset=imagenet", "dataset='imagenet' is not allowed; choose one of: cifar10, digits"),
        ("k=[0]", "k=0 is not allowed"),
        ("metrics.nntp_k=[0]", "metrics.nntp_k=0 is not allowed"),
    ],
)
def test_bad_config_gets_one_line_and_writes_nothing(tmp_path, override, expected):
    line = _one_error_line(nnts_ray(override, f"run_dir={tmp_path}/run", cwd=tmp_path))
    assert expected in line
    assert not (tmp_path / "run").exists()


def test_bad_values_found_after_loading_write_nothing(tmp_path):
    common = [f"paths.cache_dir={tmp_path}/cache", "dataset.n_samples=60", "model.train.epochs=1"]
    line = _one_error_line(nnts_ray("k=[60]", f"run_dir={tmp_path}/a", *common, cwd=tmp_path))
    assert "k=60 is not allowed for n=60 samples" in line
    line = _one_error_line(nnts_ray("model.probes=[C0,conv9]", "k=[5]",
                                    f"run_dir={tmp_path}/b", *common, cwd=tmp_path))
    assert "probe point 'conv9' does not exist; valid probe points: input, C0, R0, P0" in line
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.ray
def test_cli_run_prints_tables_and_non_finite_activations_are_named(ray_cluster, tmp_path):
    address = ray_cluster.get_runtime_context().gcs_address
    common = [f"ray.address={address}", f"paths.cache_dir={tmp_path}/cache", "dataset.n_samples=120",
              "k=[5,20]", "model.train.epochs=2"]
    ok = nnts_ray(f"run_dir={tmp_path}/ok", *common, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "NNTS (Jaccard), model lenet5, k=5, n=120" in ok.stdout
    assert "NNTP maximal-run counts" in ok.stdout and (tmp_path / "ok" / "metrics" / "nnts.parquet").is_file()
    again = nnts_ray(f"run_dir={tmp_path}/ok", *common, cwd=tmp_path)
    assert again.returncode == 0 and "already holds this finished run" in again.stdout

    model = LeNet5()
    state = model.state_dict()
    state["M3.weight"][0, 0] = float("nan")  # poisons M3 onwards
    ckpt = tmp_path / "nan.pt"
    torch.save(state, ckpt)
    bad = nnts_ray(f"run_dir={tmp_path}/nan", f"model.checkpoint={ckpt}", *common, cwd=tmp_path)
    line = _one_error_line(bad)
    assert "probe point 'M3' of model 'lenet5' has 120 non-finite values in 120 samples" in line
