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
from nnts_ray.knn.recall import exact_rows, recall_at_k, sample_queries
from nnts_ray.naming import RunPaths
from nnts_ray.progress import log
from nnts_ray.schemas import NEIGHBOUR_RANK_BANDS, NEIGHBOURS, NEIGHBOURS_ENCODING


@dataclass(frozen=True)
class ShardSpec:
    """Which rows of which probe point's features a search actor serves, and how."""

    features: str
    lo: int
    hi: int
    metric: str
    factory: str | None = None  # FAISS index_factory string for approximate search; None = exact
    search_params: str = ""


class ShardSearcher:
    """Ray actor serving one database shard. The shard is (re)loaded from its spec on demand, so a
    restarted actor (Ray's max_restarts) picks up where it was and retried tasks stay correct."""

    def __init__(self, device: str):
        import torch

        self.device = device if (device == "cpu" or torch.cuda.is_available()) else "cpu"
        self.spec: ShardSpec | None = None
        self.index: ShardIndex | None = None

    def _serve(self, spec: ShardSpec) -> ShardIndex:
        if spec != self.spec:
            x = np.load(spec.features, mmap_mode="r")[spec.lo : spec.hi]
            self.index = ShardIndex(prepare(x, spec.metric), spec.lo, self.device, spec.factory, spec.search_params)
            self.spec = spec
        return self.index

    def search(self, spec: ShardSpec, queries: np.ndarray, need: int, kc: int, refine_ranks: int
               ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates of this shard for queries sent by the driver (database split over actors)."""
        return self._serve(spec).search(queries, need, kc, refine_ranks)

    def search_part(self, spec: ShardSpec, lo: int, hi: int, k: int, kc: int, refine_ranks: int,
                    sample_ids: np.ndarray, out: str) -> int:
        """A whole query block against a whole-database shard, written as one part file here, so no
        candidates travel back to the driver (database in one piece, queries split over actors)."""
        index = self._serve(spec)
        queries = prepare(np.load(spec.features, mmap_mode="r")[lo:hi], spec.metric)
        qrows = np.arange(lo, hi, dtype=np.int64)
        d2, rows = index.search(queries, k + 1, kc, refine_ranks)
        nb = finalize(qrows, d2, rows, k, spec.metric)
        write_part(nb.rows, nb.distance, qrows, sample_ids, out)
        return hi - lo

    def where(self) -> dict:
        import ray

        ctx = ray.get_runtime_context()
        return {"node": ctx.get_node_id(), "device": self.device, "gpu_ids": [str(g) for g in ray.get_gpu_ids()]}


@dataclass(frozen=True)
class SearchPlan:
    k: int
    metric: str
    query_block: int
    refine_ranks: int
    factory: str | None = None
    search_params: str = ""
    recall_sample: int = 1000
    shards: int | None = None  # database shards (actors per query); None/1: every actor holds it all


def neighbour_part(rows: np.ndarray, dist: np.ndarray, query_rows: np.ndarray, sample_ids: np.ndarray
                   ) -> tuple[pa.Table, list[int]]:
    """One part file's rows (ids, never row positions) and its row-group lengths: ordered by rank
    band (NEIGHBOUR_RANK_BANDS), then (sample_id, rank)."""
    q, k = rows.shape
    edges = [0, *(b for b in NEIGHBOUR_RANK_BANDS if b < k), k]
    bands = list(zip(edges[:-1], edges[1:]))
    ids = sample_ids[query_rows]
    table = pa.table(
        {
            "sample_id": pa.array(np.concatenate([np.repeat(ids, hi - lo) for lo, hi in bands]), pa.int64()),
            "rank": pa.array(np.concatenate([np.tile(np.arange(lo, hi, dtype=np.int32), q) for lo, hi in bands]), pa.int32()),
            "neighbour_id": pa.array(np.concatenate([sample_ids[rows[:, lo:hi].ravel()] for lo, hi in bands]), pa.int64()),
            "distance": pa.array(np.concatenate([dist[:, lo:hi].ravel() for lo, hi in bands]), pa.float32()),
        },
        schema=NEIGHBOURS,
    )
    return table, [q * (hi - lo) for lo, hi in bands]


def write_part(rows: np.ndarray, dist: np.ndarray, query_rows: np.ndarray, sample_ids: np.ndarray, out) -> None:
    table, groups = neighbour_part(rows, dist, query_rows, sample_ids)
    write_parquet(table, out, groups=groups, **NEIGHBOURS_ENCODING)


def start_searchers(n_actors: int, gpus: int) -> list:
    import ray

    cls = ray.remote(num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1, max_restarts=2,
                     max_task_retries=2)(ShardSearcher)
    return [cls.remote("cuda" if gpus else "cpu") for _ in range(n_actors)]


def search_probe(paths: RunPaths, model: str, layer: str, sample_ids: np.ndarray, plan: SearchPlan,
                 searchers: list) -> None:
    """Neighbour tables of one probe point; finished parts (markers) are skipped."""
    done = paths.marker("neighbours", model, layer)
    if done.is_file():
        return
    features = str(paths.activations(model, layer))
    x = np.load(features, mmap_mode="r")  # (n, d) float32
    n = x.shape[0]
    first = paths.marker("neighbours", model, layer, "part-00000")
    step = part_rows(n, plan.query_block, len(searchers))
    if first.is_file():  # resume with the partition already on disk, whatever query_block says now
        lo, hi = read_json(first)["rows"]
        step = hi - lo
    blocks = [(s, min(s + step, n)) for s in range(0, n, step)]
    todo = [(i, b) for i, b in enumerate(blocks) if not paths.marker("neighbours", model, layer, f"part-{i:05d}").is_file()]
    if todo and (plan.shards or 1) == 1:
        _search_parts_on_actors(paths, model, layer, features, n, sample_ids, plan, searchers, todo, len(blocks))
    elif todo:
        _search_with_database_shards(paths, model, layer, x, features, sample_ids, plan, searchers[: plan.shards],
                                     todo, len(blocks))
    for stale in paths.neighbours_dir(model, layer).glob(".*.tmp"):  # of writers killed mid-write (retried)
        stale.unlink(missing_ok=True)
    info = {"parts": len(blocks), "n": n, "k": plan.k}
    if plan.factory:
        info["recall"] = measure_recall(paths, model, layer, x, sample_ids, plan)
        log(f"neighbours {model}/{layer}: recall@{plan.k} of {plan.factory} = {info['recall']:.4f}")
    mark_done(done, info)


def part_rows(n: int, query_block: int, actors: int) -> int:
    """Queries per part file: at most `query_block`, at least two parts per actor, and a part count
    that is a multiple of the actors so they all finish together (5 equal parts on 2 actors take
    3 parts' time, 1.2x a balanced split: measured as the search stage's gap to bare FAISS)."""
    parts = max(2 * actors, -(-n // query_block))
    parts = -(-parts // actors) * actors
    return min(query_block, max(64, -(-n // parts)))  # tiny inputs: parts of at least 64 queries


def _part_done(paths: RunPaths, model: str, layer: str, part: int, lo: int, hi: int, n_parts: int) -> None:
    mark_done(paths.marker("neighbours", model, layer, f"part-{part:05d}"), {"rows": [lo, hi]})
    if n_parts > 1:
        log(f"neighbours {model}/{layer}: part {part + 1}/{n_parts}")


def _search_parts_on_actors(paths, model, layer, features, n, sample_ids, plan, searchers, todo, n_parts) -> None:
    """Every actor holds the whole database; query blocks go round-robin, at most two in flight per
    actor, and each actor writes its own part files (nothing returns through the driver)."""
    import ray

    spec = ShardSpec(features, 0, n, plan.metric, plan.factory, plan.search_params)
    kc = candidates_needed(plan.k, n)
    ids_ref = ray.put(sample_ids)
    queue, inflight = list(todo), {}
    while queue or inflight:
        while queue and len(inflight) < 2 * len(searchers):
            part, (lo, hi) = queue.pop(0)
            actor = searchers[part % len(searchers)]
            out = str(paths.neighbours_part(model, layer, part))
            ref = actor.search_part.remote(spec, lo, hi, plan.k, kc, plan.refine_ranks, ids_ref, out)
            inflight[ref] = (part, lo, hi)
        ready, _ = ray.wait(list(inflight), num_returns=1)
        part, lo, hi = inflight.pop(ready[0])
        assert ray.get(ready[0]) == hi - lo
        _part_done(paths, model, layer, part, lo, hi, n_parts)


def _search_with_database_shards(paths, model, layer, x, features, sample_ids, plan, searchers, todo, n_parts) -> None:
    """The database split over actors (when it does not fit one device): every query block goes to
    every shard and the driver merges the candidates into the global top-k."""
    import ray

    n = x.shape[0]
    bounds = np.linspace(0, n, len(searchers) + 1).astype(int)
    shards = [(s, ShardSpec(features, int(lo), int(hi), plan.metric, plan.factory, plan.search_params))
              for s, lo, hi in zip(searchers, bounds[:-1], bounds[1:]) if hi > lo]
    kc = candidates_needed(plan.k, n)

    def submit(lo: int, hi: int):
        q = ray.put(prepare(x[lo:hi], plan.metric))
        return [s.search.remote(spec, q, plan.k + 1, kc, plan.refine_ranks) for s, spec in shards]

    pending = submit(*todo[0][1])
    for j, (part, (lo, hi)) in enumerate(todo):
        results = ray.get(pending)
        if j + 1 < len(todo):
            pending = submit(*todo[j + 1][1])  # keep the actors busy while the driver merges
        d2, rows = merge_candidates(results, kc)
        qrows = np.arange(lo, hi, dtype=np.int64)
        nb = finalize(qrows, d2, rows, plan.k, plan.metric)
        write_part(nb.rows, nb.distance, qrows, sample_ids, paths.neighbours_part(model, layer, part))
        _part_done(paths, model, layer, part, lo, hi, n_parts)


def measure_recall(paths: RunPaths, model: str, layer: str, x: np.ndarray, sample_ids: np.ndarray,
                   plan: SearchPlan) -> float:
    """Recall@k of what was written, against exact search on `plan.recall_sample` seeded queries."""
    import polars as pl

    rows = sample_queries(len(sample_ids), plan.recall_sample)
    exact = exact_rows(x, rows, plan.k, plan.metric)
    written = (
        pl.scan_parquet(paths.neighbours_dir(model, layer) / "*.parquet")
        .filter(pl.col("sample_id").is_in(sample_ids[rows].tolist()))
        .sort("sample_id", "rank")
        .collect()["neighbour_id"].to_numpy().reshape(len(rows), plan.k)
    )
    return recall_at_k(np.searchsorted(sample_ids, written), exact)
