"""Stage 4: feature matrices → exact k-NN neighbour tables, database sharded across Ray actors.

For each probe point every `ShardSearcher` actor holds one contiguous slice of the (prepared)
database; every query block is searched against every shard, and the per-shard candidates (already
in global rows) are merged into the global top-k by (distance, row). The driver then excludes self
by index and writes one Parquet part per query block, each atomically and followed by a completion marker, so a killed run resumes at the first missing part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from nnts_ray.io import mark_done, read_json, write_parquet
from nnts_ray.knn.exact import ShardIndex, candidates_needed, finalize, merge_candidates, prepare
from nnts_ray.naming import RunPaths
from nnts_ray.progress import log
from nnts_ray.schemas import NEIGHBOURS


class ShardSearcher:
    """Ray actor holding one database shard of the current probe point."""

    def __init__(self, device: str):
        self.device = device
        self.index: ShardIndex | None = None

    def load(self, features: str, lo: int, hi: int, metric: str) -> int:
        x = np.load(features, mmap_mode="r")[lo:hi]
        self.index = ShardIndex(prepare(x, metric), lo, self.device)
        return hi - lo

    def search(self, queries: np.ndarray, need: int, kc: int, refine_ranks: int) -> tuple[np.ndarray, np.ndarray]:
        assert self.index is not None, "load() first"
        return self.index.search(queries, need, kc, refine_ranks)

    def node(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()


@dataclass(frozen=True)
class SearchPlan:
    k: int
    metric: str
    query_block: int
    refine_ranks: int


def neighbour_part(rows: np.ndarray, dist: np.ndarray, query_rows: np.ndarray, sample_ids: np.ndarray) -> pa.Table:
    """One part file's rows, sorted by (sample_id, rank): ids, never row positions."""
    q, k = rows.shape
    return pa.table(
        {
            "sample_id": pa.array(np.repeat(sample_ids[query_rows], k), pa.int64()),
            "rank": pa.array(np.tile(np.arange(k, dtype=np.int32), q), pa.int32()),
            "neighbour_id": pa.array(sample_ids[rows.ravel()], pa.int64()),
            "distance": pa.array(dist.ravel(), pa.float32()),
        },
        schema=NEIGHBOURS,
    )


def start_searchers(n_actors: int, gpus: int) -> list:
    import ray

    cls = ray.remote(num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1, max_restarts=2,
                     max_task_retries=2)(ShardSearcher)
    return [cls.remote("cuda" if gpus else "cpu") for _ in range(n_actors)]


def search_probe(paths: RunPaths, model: str, layer: str, sample_ids: np.ndarray, plan: SearchPlan,
                 searchers: list) -> None:
    """Neighbour tables of one probe point; finished parts (markers) are skipped."""
    import ray

    done = paths.marker("neighbours", model, layer)
    if done.is_file():
        return
    features = str(paths.activations(model, layer))
    x = np.load(features, mmap_mode="r")  # (n, d) float32
    n = x.shape[0]
    first = paths.marker("neighbours", model, layer, "part-00000")
    step = plan.query_block
    if first.is_file():  # resume with the partition already on disk, whatever query_block says now
        lo, hi = read_json(first)["rows"]
        step = hi - lo
    blocks = [(s, min(s + step, n)) for s in range(0, n, step)]
    todo = [(i, b) for i, b in enumerate(blocks) if not paths.marker("neighbours", model, layer, f"part-{i:05d}").is_file()]
    if todo:
        bounds = np.linspace(0, n, len(searchers) + 1).astype(int)
        shards = [(s, lo, hi) for s, lo, hi in zip(searchers, bounds[:-1], bounds[1:]) if hi > lo]
        ray.get([s.load.remote(features, int(lo), int(hi), plan.metric) for s, lo, hi in shards])
        kc = candidates_needed(plan.k, n)

        def submit(lo: int, hi: int):
            q = ray.put(prepare(x[lo:hi], plan.metric))
            return [s.search.remote(q, plan.k + 1, kc, plan.refine_ranks) for s, _, _ in shards]

        pending = submit(*todo[0][1])
        for j, (part, (lo, hi)) in enumerate(todo):
            results = ray.get(pending)
            if j + 1 < len(todo):
                pending = submit(*todo[j + 1][1])  # keep the actors busy while the driver finalises
            d2, rows = merge_candidates(results, kc)
            qrows = np.arange(lo, hi, dtype=np.int64)
            nb = finalize(qrows, d2, rows, plan.k, plan.metric)
            write_parquet(neighbour_part(nb.rows, nb.distance, qrows, sample_ids), paths.neighbours_part(model, layer, part))
            mark_done(paths.marker("neighbours", model, layer, f"part-{part:05d}"), {"rows": [lo, hi]})
            if len(blocks) > 1:
                log(f"neighbours {model}/{layer}: part {part + 1}/{len(blocks)}")
    mark_done(done, {"parts": len(blocks), "n": n, "k": plan.k})
