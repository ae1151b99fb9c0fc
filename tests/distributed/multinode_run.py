"""Run one analysis on a simulated three-node Ray cluster: a head and two worker nodes on this machine,
each declaring one CPU and one *logical* GPU (Ray schedules on it; torch finds no CUDA device).

A process can attach to one Ray cluster only, and the test session's process owns one, so
test_multinode.py runs this file in a subprocess (with RAY_TMPDIR set, so that nothing of this
cluster lands in the machine-wide /tmp/ray):

    python tests/distributed/multinode_run.py <override> ...     # prints the cluster's node ids (JSON)
"""

from __future__ import annotations

import json
import sys


def main(overrides: list[str]) -> None:
    import ray
    from ray.cluster_utils import Cluster

    from nnts_ray.cli import load_config
    from nnts_ray.pipeline import run

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 1, "include_dashboard": False})
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1, num_gpus=1, wait=False)  # both start at once
        cluster.wait_for_nodes()
        run(load_config([*overrides, f"ray.address={cluster.address}"]))  # the pipeline's own connect()
        print(json.dumps({"nodes": sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])}))
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
