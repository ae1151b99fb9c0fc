"""Stage 4: feature matrices → exact k-NN neighbour tables (and, for the largest k, intersections of
neighbour sets), searched on Ray actors.

By default every `ShardSearcher` actor holds a probe point's whole database and query blocks are
spread over the actors, each writing its own Parquet part (nothing returns through the driver). The
tables keep `stored` ranks (what readers use); an NNTS k beyond them (the paper's k = n/5) is never
ranked or written: the actor turns the same distances into membership bit sets (`search_with_sets`),
and once every probe point has them, each query block's sets are intersected for every pair of probe
points into `intersections/k=<k>/part-*.parquet` — the per-sample counts NNTS needs. The bit sets are
work files, removed when their intersections are written.

With `knn.shards=S` the database is split over S actors instead: every query block is searched
against every shard and the driver merges the per-shard candidates (already in global rows) into the
global top-k by (distance, row). Either way self is excluded by index and each file is written
atomically, then a completion marker records its size and digest, so a killed run resumes at the
first missing part and a damaged part is searched again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pyarrow as pa

from nnts_ray.io import check_marker, read_json, record_digest, say_redone, write_json, write_npy, write_parquet
from nnts_ray.knn.exact import ShardIndex, candidates_needed, finalize, neighbours_of, prepare, shard_candidates
from nnts_ray.knn.recall import exact_rows, recall_at_k, sample_queries
from nnts_ray.naming import RunPaths
from nnts_ray.plan import ProbePoint, RunPlan, SearchSpec
from nnts_ray.progress import Progress, log
from nnts_ray.schemas import INTERSECTIONS, NEIGHBOUR_RANK_BANDS, NEIGHBOURS, NEIGHBOURS_ENCODING
from nnts_ray.stages import activations


@dataclass(frozen=True)
class ShardSpec:
    """Which rows of which probe point's features a search actor serves, and how."""

    features: str
    lo: int
    hi: int
    metric: str
    factory: str | None = None  # FAISS index_factory string for approximate search; None = exact
    search_params: str = ""


@dataclass(frozen=True)
class PartJob:
    """One query block of one probe point, as an actor receives it (plain values)."""

    shard: ShardSpec
    lo: int
    hi: int
    out: str  # the Parquet part
    set_outs: tuple[str, ...] = ()  # one bit-set work file per k of SearchSpec.set_ks


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

    def search(self, spec: ShardSpec, queries: np.ndarray, k: int, n: int, refine_ranks: int
               ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates of this shard for queries sent by the driver (database split over actors)."""
        return shard_candidates(self._serve(spec), queries, k, n, refine_ranks)

    def search_part(self, job: PartJob, spec: SearchSpec, sample_ids: np.ndarray) -> dict:
        """A whole query block against a whole-database shard, written here as one part file (and its
        bit sets), so no candidates travel back to the driver; returns the files' records."""
        from nnts_ray import digest

        index = self._serve(job.shard)
        queries = prepare(np.load(job.shard.features, mmap_mode="r")[job.lo : job.hi], spec.metric)
        qrows = np.arange(job.lo, job.hi, dtype=np.int64)
        n = len(sample_ids)
        records = {}
        if spec.set_ks:
            d2, rows, sets = index.search_with_sets(queries, qrows, spec.k + 1, candidates_needed(spec.k, n),
                                                    spec.refine_ranks, list(spec.set_ks))
            nb = finalize(qrows, d2, rows, spec.k, spec.metric)
            for k, bits, out in zip(spec.set_ks, sets, job.set_outs):
                write_npy(bits, out)
                records[f"k{k}"] = digest.file(out)
        else:
            nb = neighbours_of([shard_candidates(index, queries, spec.k, n, spec.refine_ranks)], qrows, spec.k, n,
                               spec.metric)
        write_part(nb.rows, nb.distance, qrows, sample_ids, job.out)
        return {"part": digest.file(job.out), **records}

    def where(self) -> dict:
        import ray

        ctx = ray.get_runtime_context()
        return {"node": ctx.get_node_id(), "device": self.device, "gpu_ids": [str(g) for g in ray.get_gpu_ids()]}


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


def part_rows(n: int, query_block: int, actors: int) -> int:
    """Queries per part file: at most `query_block`, at least two parts per actor, and a part count
    that is a multiple of the actors so they all finish together (5 equal parts on 2 actors take
    3 parts' time, 1.2x a balanced split: measured as the search stage's gap to bare FAISS)."""
    parts = max(2 * actors, -(-n // query_block))
    parts = -(-parts // actors) * actors
    return min(query_block, max(64, -(-n // parts)))  # tiny inputs: parts of at least 64 queries


def blocks(plan: RunPlan, paths: RunPaths, actors: int) -> list[tuple[int, int]]:
    """The query blocks, one partition for every probe point of the run (decided once and recorded,
    so a run resumed with another knn.query_block keeps its partition and its parts stay aligned)."""
    marker, n = paths.marker("neighbours", "partition"), plan.data.n
    try:
        step = int(read_json(marker)["step"])
    except (OSError, ValueError, KeyError, TypeError):
        step = part_rows(n, plan.search.query_block, actors)
        write_json({"step": step, "n": n}, marker)
    return [(s, min(s + step, n)) for s in range(0, n, step)]


def _features_digest(paths: RunPaths, p: ProbePoint) -> str:
    """What a probe point's neighbour tables are made from: its features' recorded digest."""
    record = read_json(paths.marker("activations", p.model))["files"][p.layer]
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def _part_name(i: int) -> str:
    return f"part-{i:05d}"


def _recorded_parts(marker) -> int:
    """The part count a probe point's completion marker records (0 without a readable one)."""
    try:
        return int(read_json(marker).get("parts", 0))
    except (OSError, ValueError, AttributeError, TypeError):
        return 0


def _probe_files(paths: RunPaths, p: ProbePoint, n_parts: int) -> dict:
    return {_part_name(i): paths.neighbours_part(p.model, p.layer, i) for i in range(n_parts)}


def _part_ok(paths: RunPaths, p: ProbePoint, i: int, inputs: str, set_ks: tuple[int, ...] = ()) -> bool:
    """A part (and, asked for, its bit sets) intact and made from these features."""
    record = check_marker(paths.marker("neighbours", p.model, p.layer, _part_name(i)),
                          {"part": paths.neighbours_part(p.model, p.layer, i)}, inputs)[0]
    if record is None or not set_ks:
        return record is not None
    from nnts_ray import digest

    sets = record.get("sets", {})
    return all(digest.file_matches(paths.neighbour_sets(p.model, p.layer, k, i), sets.get(f"k{k}")) for k in set_ks)


def run(plan: RunPlan, paths: RunPaths) -> dict:
    """Neighbour tables of every probe point and intersections of their sets; verified work is skipped."""
    from nnts_ray.cluster import session, start_actors, stop_actors

    inputs = {p.key: _features_digest(paths, p) for p in plan.probes}
    stale = []
    for p in plan.probes:
        marker = paths.marker("neighbours", p.model, p.layer)
        record, problems = check_marker(marker, _probe_files(paths, p, _recorded_parts(marker)), inputs[p.key])
        if record is None:
            say_redone(f"neighbours {p.model}/{p.layer}", problems)
            stale.append(p)
    need_sets = _intersections_todo(plan, paths) if plan.search.set_ks else []
    if not stale and not need_sets:
        return {}
    activations.require(paths, stale or plan.probes, "searching neighbours again")
    cluster = session(plan.config.ray)
    spec = plan.search
    searchers = start_actors(ShardSearcher, max(cluster.actors, spec.shards), cluster.resources.gpus,
                             "cuda" if cluster.resources.gpus else "cpu")
    facts: dict = {}
    try:
        parts = blocks(plan, paths, len(searchers))
        with_sets = {part for _, part in need_sets}  # blocks whose bit sets an intersection still needs
        todo = [(p, i) for p in plan.probes for i in range(len(parts))
                if not _part_ok(paths, p, i, inputs[p.key], spec.set_ks if (p in stale or i in with_sets) else ())]
        remaining = {p: sum(q == p for q, _ in todo) for p in stale}
        for p, left in remaining.items():
            unrecorded = sum(paths.neighbours_part(p.model, p.layer, i).exists() for i in range(len(parts)))
            if 0 < left < len(parts):  # resumed or repaired: only what is not intact is searched
                log(f"neighbours {p.model}/{p.layer}: redoing {left} of {len(parts)} parts (the others are intact)")
            elif left and unrecorded:  # files an interrupted or damaged run left, with no record that they are whole
                log(f"neighbours {p.model}/{p.layer}: redoing all {left} parts ({unrecorded} part files have no "
                    "completion record)")
        searches, copies, link_now = _dedupe(plan, paths, todo, inputs)

        def part_done(p: ProbePoint, i: int | None = None) -> None:  # a probe point's marker once its last part is in
            if p in remaining:
                remaining[p] -= 1
                if remaining[p] == 0:
                    facts_of = _finish_probe(plan, paths, p, len(parts), inputs[p.key])
                    if facts_of:
                        facts.setdefault("conventions", {"index": {"recall": {}, "recall_sample": spec.recall_sample}})
                        facts["conventions"]["index"]["recall"].update(facts_of)

        for p in [p for p in stale if remaining[p] == 0]:  # every part intact already
            remaining[p] = 1
            part_done(p)
        with Progress(f"neighbours ({len(plan.probes)} probe points, k={spec.k}"
                      + (f", sets at k={list(spec.set_ks)}" if spec.set_ks else "") + ")",
                      len(plan.probes) * len(parts), "parts", len(plan.probes) * len(parts) - len(todo)) as progress:
            def linked(src: ProbePoint, dst: ProbePoint, i: int) -> None:
                _link_part(paths, spec, src, dst, i, inputs[dst.key])
                progress.advance(note=f"{dst.model}/{dst.layer} = {src.model}/{src.layer}")
                part_done(dst)

            def searched(p: ProbePoint, i: int) -> None:  # then the probe points with equal features: linked
                part_done(p)
                for q in copies.get((p, i), []):
                    linked(p, q, i)

            for src, dst, i in link_now:
                linked(src, dst, i)
            search = _search_parts_on_actors if spec.shards == 1 else _search_with_database_shards
            search(plan, paths, parts, searches, inputs, searchers[: spec.shards] if spec.shards > 1 else searchers,
                   progress, searched)
        if spec.set_ks:
            intersect(plan, paths, parts)
        facts["cluster"] = {**cluster.facts(), "search_actors": _where(searchers)}
    finally:
        stop_actors(searchers)
    return facts


def _where(actors: list) -> list[dict]:
    import ray

    return ray.get([a.where.remote() for a in actors])


def _finish_probe(plan: RunPlan, paths: RunPaths, p: ProbePoint, n_parts: int, inputs: str) -> dict:
    """A probe point's completion marker (every part's record); its recall for an approximate index."""
    spec = plan.search
    info, facts = {"parts": n_parts, "n": plan.data.n, "k": spec.k}, {}
    if spec.factory:
        info["recall"] = facts[f"{p.model}/{p.layer}"] = measure_recall(paths, p, plan.source.sample_ids, spec)
        log(f"neighbours {p.model}/{p.layer}: recall@{spec.k} of {spec.factory} = {info['recall']:.4f}")
    records = {name: read_json(paths.marker("neighbours", p.model, p.layer, name))["files"]["part"]
               for name in _probe_files(paths, p, n_parts)}
    write_json({**info, "files": records, "inputs": inputs}, paths.marker("neighbours", p.model, p.layer))
    for stray in paths.neighbours_dir(p.model, p.layer).glob(".*.tmp"):  # of writers killed mid-write (retried)
        stray.unlink(missing_ok=True)
    return facts


def _part_done(paths: RunPaths, p: ProbePoint, part: int, lo: int, hi: int, records: dict, inputs: str,
               progress: Progress, then) -> None:
    name = _part_name(part)
    sets = {key: rec for key, rec in records.items() if key != "part"}
    write_json({"rows": [lo, hi], "files": {"part": records["part"]}, "sets": sets, "inputs": inputs},
               paths.marker("neighbours", p.model, p.layer, name))
    progress.advance(note=f"{p.model}/{p.layer}")
    then(p, part)


def _dedupe(plan: RunPlan, paths: RunPaths, todo: list, inputs: dict) -> tuple[list, dict, list]:
    """Probe points with byte-identical features (every model's `input`, say) have the same
    neighbours: only the first of them is searched, the others link its files. Returns (parts to
    search, {searched part: probe points to link after it}, [(source, probe point, part) to link now])."""
    first: dict[str, ProbePoint] = {}
    same = {p: first.setdefault(inputs[p.key], p) for p in plan.probes}
    todo_set = set(todo)
    searches, copies, link_now = {}, {}, []
    for p, i in todo:
        src = same[p]
        if src == p:
            searches[(p, i)] = None
        elif (src, i) in todo_set or not _part_ok(paths, src, i, inputs[src.key], plan.search.set_ks):
            searches[(src, i)] = None
            copies.setdefault((src, i), []).append(p)
        else:
            link_now.append((src, p, i))
    order = {p: j for j, p in enumerate(plan.probes)}  # probe point by probe point: each actor loads a database once
    return sorted(searches, key=lambda t: (order[t[0]], t[1])), copies, link_now


def _link_part(paths: RunPaths, spec: SearchSpec, src: ProbePoint, dst: ProbePoint, i: int, inputs: str) -> None:
    """Probe point `dst` takes part i (and its bit sets) of `src`, whose features are identical."""
    from nnts_ray.stages.reuse import link

    record = read_json(paths.marker("neighbours", src.model, src.layer, _part_name(i)))
    link(paths.neighbours_part(src.model, src.layer, i), paths.neighbours_part(dst.model, dst.layer, i))
    for k in spec.set_ks:
        link(paths.neighbour_sets(src.model, src.layer, k, i), paths.neighbour_sets(dst.model, dst.layer, k, i))
    write_json({**record, "inputs": inputs, "same_as": f"{src.model}/{src.layer}"},
               paths.marker("neighbours", dst.model, dst.layer, _part_name(i)))


def _search_parts_on_actors(plan, paths, parts, todo, inputs, searchers, progress, then) -> None:
    """Every actor holds a whole database; parts go to the least busy actor (probe point by probe
    point, so an actor loads each database once), two in flight per actor, each writing its own
    files (nothing returns through the driver but the files' records)."""
    import ray

    from nnts_ray.cluster import run_tasks

    spec, n = plan.search, plan.data.n
    ids_ref = ray.put(plan.source.sample_ids)

    def submit(actor, task):
        p, i = task
        lo, hi = parts[i]
        shard = ShardSpec(str(paths.activations(p.model, p.layer)), 0, n, spec.metric, spec.factory, spec.search_params)
        job = PartJob(shard, lo, hi, str(paths.neighbours_part(p.model, p.layer, i)),
                      tuple(str(paths.neighbour_sets(p.model, p.layer, k, i)) for k in spec.set_ks))
        return actor.search_part.remote(job, spec, ids_ref)

    def done(task, records: dict) -> None:
        p, i = task
        _part_done(paths, p, i, *parts[i], records, inputs[p.key], progress, then)

    run_tasks(searchers, todo, submit, done)


def _search_with_database_shards(plan, paths, parts, todo, inputs, searchers, progress, then) -> None:
    """The database split over actors (when it does not fit one device): every query block goes to
    every shard and the driver merges the candidates into the global top-k."""
    import ray

    from nnts_ray import digest

    spec, n, ids = plan.search, plan.data.n, plan.source.sample_ids
    bounds = np.linspace(0, n, len(searchers) + 1).astype(int)
    for p in dict.fromkeys(p for p, _ in todo):
        features = str(paths.activations(p.model, p.layer))
        x = np.load(features, mmap_mode="r")
        shards = [(s, ShardSpec(features, int(lo), int(hi), spec.metric, spec.factory, spec.search_params))
                  for s, lo, hi in zip(searchers, bounds[:-1], bounds[1:]) if hi > lo]

        def submit(lo: int, hi: int):
            q = ray.put(prepare(x[lo:hi], spec.metric))
            return [s.search.remote(shard, q, spec.k, n, spec.refine_ranks) for s, shard in shards]

        mine = [i for q, i in todo if q == p]
        pending = submit(*parts[mine[0]])
        for j, i in enumerate(mine):
            results = ray.get(pending)
            if j + 1 < len(mine):
                pending = submit(*parts[mine[j + 1]])  # keep the actors busy while the driver merges
            qrows = np.arange(*parts[i], dtype=np.int64)
            nb = neighbours_of(results, qrows, spec.k, n, spec.metric)
            out = paths.neighbours_part(p.model, p.layer, i)
            write_part(nb.rows, nb.distance, qrows, ids, out)
            _part_done(paths, p, i, *parts[i], {"part": digest.file(out)}, inputs[p.key], progress, then)


def _intersection_inputs(plan: RunPlan, paths: RunPaths, part: int) -> str:
    """What one block's intersections are made from: every probe point's marker of that part."""
    return record_digest(*(paths.marker("neighbours", p.model, p.layer, _part_name(part)) for p in plan.probes))


def _intersections_todo(plan: RunPlan, paths: RunPaths) -> list[tuple[int, int]]:
    """(k, part) whose intersections are missing, damaged or stale (parts as the partition records)."""
    try:
        n_blocks = len(range(0, plan.data.n, int(read_json(paths.marker("neighbours", "partition"))["step"])))
    except (OSError, ValueError, KeyError, TypeError):
        return [(k, -1) for k in plan.search.set_ks]  # no partition yet: everything is to do
    return [(k, i) for k in plan.search.set_ks for i in range(n_blocks)
            if check_marker(paths.marker("intersections", f"k{k}", _part_name(i)),
                            {"part": paths.intersections_part(k, i)}, _intersection_inputs(plan, paths, i))[0] is None]


def intersect(plan: RunPlan, paths: RunPaths, parts: list[tuple[int, int]]) -> None:
    """Per-sample |K_a ∩ K_b| of every pair of probe points at each set-only k, block by block from
    the bit sets (popcount of AND, 64 neighbours at a time); the bit sets are removed after."""
    from nnts_ray.io import mark_files

    probes = list(plan.probes)
    pa_, pb_ = (np.array(v, dtype=np.int64) for v in zip(*combinations(range(len(probes)), 2))) if len(probes) > 1 \
        else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    todo = _intersections_todo(plan, paths)
    with Progress(f"intersections of neighbour sets at k={list(plan.search.set_ks)}", len(todo), "parts") as progress:
        for k, i in todo:
            lo, hi = parts[i]
            bits = [np.load(paths.neighbour_sets(p.model, p.layer, k, i)) for p in probes]  # each (q, words) uint64
            counts = np.stack([np.bitwise_count(bits[a] & bits[b]).sum(axis=1, dtype=np.int64)
                               for a, b in zip(pa_, pb_)]).reshape(len(pa_), hi - lo)  # (pairs, q)
            out = paths.intersections_part(k, i)
            write_parquet(intersection_table(probes, pa_, pb_, plan.source.sample_ids[lo:hi], counts), out,
                          INTERSECTIONS, use_dictionary=["model_a", "layer_a", "model_b", "layer_b"])
            mark_files(paths.marker("intersections", f"k{k}", _part_name(i)), {"part": out},
                       inputs=_intersection_inputs(plan, paths, i))
            progress.advance()
    shutil.rmtree(paths.work / "sets", ignore_errors=True)


def intersection_table(probes: list[ProbePoint], pa_: np.ndarray, pb_: np.ndarray, ids: np.ndarray,
                       counts: np.ndarray) -> pa.Table:
    """Rows (sample, pair a < b) of one block, pair-major: the layout of schemas.INTERSECTIONS."""
    q = len(ids)

    def names(side: str, index: np.ndarray) -> np.ndarray:
        return np.repeat([getattr(probes[j], side) for j in index], q)

    return pa.table({
        "sample_id": np.tile(ids, len(pa_)),
        "model_a": names("model", pa_), "layer_a": names("layer", pa_),
        "model_b": names("model", pb_), "layer_b": names("layer", pb_),
        "intersection": counts.ravel().astype(np.int32),
    })


def measure_recall(paths: RunPaths, p: ProbePoint, sample_ids: np.ndarray, spec: SearchSpec) -> float:
    """Recall@k of what was written, against exact search on `spec.recall_sample` seeded queries."""
    import polars as pl

    x = np.load(paths.activations(p.model, p.layer), mmap_mode="r")
    rows = sample_queries(len(sample_ids), spec.recall_sample)
    exact = exact_rows(x, rows, spec.k, spec.metric)
    written = (
        pl.scan_parquet(paths.neighbours_dir(p.model, p.layer) / "*.parquet")
        .filter(pl.col("sample_id").is_in(sample_ids[rows].tolist()))
        .sort("sample_id", "rank")
        .collect()["neighbour_id"].to_numpy().reshape(len(rows), spec.k)
    )
    return recall_at_k(np.searchsorted(sample_ids, written), exact)
