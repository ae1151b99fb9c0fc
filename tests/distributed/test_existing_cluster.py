"""Joining an existing cluster is a configuration choice (`ray.address`): `ray job submit` runs
`nnts-ray ray.address=auto …` on a head started with `ray start --head` (its own ports and temp dir,
stopped by killing exactly its processes: never `ray stop`, which would end every cluster here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib.util import find_spec

import pytest

from nnts_ray.io import read_json
from nnts_ray.naming import RunPaths
from tests.distributed.helpers import (
    assert_same_results, console_script, free_ports, overrides, stop_processes_mentioning,
)

pytestmark = [
    pytest.mark.ray, pytest.mark.slow,
    pytest.mark.skipif(find_spec("aiohttp") is None, reason="`ray job submit` needs Ray's job server, part of the "
                       "dashboard: install ray[default] (pip install 'ray[default]')"),
]


@dataclass(frozen=True)
class Head:
    dashboard: str  # the job server's address, http://127.0.0.1:<port>
    env: dict  # what `ray` commands aimed at this head run with

    def ray(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([console_script("ray"), *args], capture_output=True, text=True, env=self.env,
                              timeout=timeout)


@pytest.fixture
def head():
    temp = tempfile.mkdtemp(prefix="nnts-head-", dir="/tmp")  # short: Ray's socket paths are limited
    # RAY_TMPDIR keeps this cluster's address file out of /tmp/ray, so no one's `auto` finds it.
    # Token authentication (Ray's default for local clusters) is made explicit, so that the job CLI
    # sends the token Ray keeps for this machine's clusters.
    env = {**os.environ, "RAY_TMPDIR": temp, "RAY_AUTH_MODE": "token", "PYTHONWARNINGS": "ignore"}
    gcs, dash, client, node, objects, agent, agent_grpc, runtime_env, metrics = free_ports(9)
    try:
        started = subprocess.run(
            [console_script("ray"), "start", "--head", f"--temp-dir={temp}", "--num-cpus=2", f"--port={gcs}",
             "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
             f"--ray-client-server-port={client}", f"--node-manager-port={node}", f"--object-manager-port={objects}",
             f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
             f"--runtime-env-agent-port={runtime_env}", f"--metrics-export-port={metrics}",
             "--min-worker-port=0", "--max-worker-port=0", "--disable-usage-stats"],
            capture_output=True, text=True, env=env, timeout=120, start_new_session=True)
        assert started.returncode == 0, started.stderr[-3000:]
        yield Head(f"http://127.0.0.1:{dash}", env)
    finally:
        stop_processes_mentioning(temp, grace=2)
        shutil.rmtree(temp, ignore_errors=True)


def test_ray_job_submit_runs_the_pipeline_on_an_existing_cluster(head, reference_run, model_cache, tmp_path):
    paths = RunPaths(tmp_path / "run")
    job = head.ray("job", "submit", "--address", head.dashboard, "--",
                   console_script("nnts-ray"), "ray.address=auto",
                   *overrides(paths.root, model_cache, reuse=reference_run), timeout=600)
    assert job.returncode == 0 and "succeeded" in job.stdout, (job.stdout + job.stderr)[-3000:]
    assert "NNTS (Jaccard), model lenet5, k=5, n=600" in job.stdout  # the job's own output, tailed by the CLI

    nodes = head.ray("list", "nodes", "--address", head.dashboard, "--format", "json")
    assert nodes.returncode == 0, nodes.stderr[-3000:]
    head_nodes = {n["node_id"] for n in json.loads(nodes.stdout)}
    cluster = read_json(paths.manifest)["cluster"]
    assert cluster["cpus"] == 2 and {a["node"] for a in cluster["search_actors"]} <= head_nodes  # ran there
    assert_same_results(paths, reference_run)
