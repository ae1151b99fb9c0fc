"""Stage 5: neighbour tables → metrics/*.parquet: NNTS, per-sample, NNTP, persistent partners, layers
(Polars over neighbour ids), then the analysis suite, whose per-layer statistics join layers.parquet."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import polars as pl

from nnts_ray import schemas
from nnts_ray.analysis.stage import ANALYSIS_STEPS, AnalysisInputs, AnalysisSettings, run_analysis
from nnts_ray.io import check_marker, mark_files, read_json, record_digest, say_redone, write_parquet
from nnts_ray.metrics.tables import metric_tables
from nnts_ray.naming import RunPaths
from nnts_ray.plan import ProbePoint, RunPlan
from nnts_ray.progress import Progress, log
from nnts_ray.stages import activations

NEIGHBOUR_CACHE_BYTES = 256 << 20  # the analysis's neighbour arrays kept between reads
WRITTEN = ("nnts", "nntp", "nntp_partners", "layers")  # always; per_sample and the analysis tables as configured


def scan(paths: RunPaths, p: ProbePoint) -> pl.LazyFrame:
    """The neighbour table of one probe point (each scanned on its own: a filter on a concatenation of
    scans reads every scan)."""
    return pl.scan_parquet(paths.neighbours_dir(p.model, p.layer) / "*.parquet")


def _inputs(plan: RunPlan, paths: RunPaths) -> str:
    """What the metrics are made from: every probe point's neighbour record, the set intersections'
    records and the features'."""
    return record_digest(*(paths.marker("neighbours", p.model, p.layer) for p in plan.probes),
                         *sorted((paths.root / "_state" / "intersections").glob("*.done")),
                         *(paths.marker("activations", m.name) for m in plan.models))


def counted_intersections(plan: RunPlan, paths: RunPaths) -> dict[int, np.ndarray]:
    """k -> (pairs, n) int64 per-sample intersections of each set-only k, pairs in combinations
    order of the plan's probe points, samples in sample_id order (read from intersections/k=<k>/)."""
    probes = list(plan.probes)
    index = pl.DataFrame({"model": [p.model for p in probes], "layer": [p.layer for p in probes],
                          "i": np.arange(len(probes), dtype=np.int64)})
    out = {}
    for k in plan.ks.sets:
        t = (pl.scan_parquet(paths.intersections_root / f"k={k}" / "*.parquet")
             .join(index.lazy().rename({"model": "model_a", "layer": "layer_a", "i": "a"}), on=["model_a", "layer_a"])
             .join(index.lazy().rename({"model": "model_b", "layer": "layer_b", "i": "b"}), on=["model_b", "layer_b"])
             .sort("a", "b", "sample_id").collect())
        pairs = len(probes) * (len(probes) - 1) // 2
        assert t.height == pairs * plan.data.n, f"intersections at k={k}: {t.height} rows, {pairs * plan.data.n} expected"
        out[k] = t["intersection"].to_numpy().astype(np.int64).reshape(pairs, plan.data.n)
    return out


def run(plan: RunPlan, paths: RunPaths) -> dict:
    marker, inputs = paths.marker("metrics"), _inputs(plan, paths)
    written = [paths.metric(name) for name in (*WRITTEN, *_recorded_tables(marker))]
    record, problems = check_marker(marker, {p.stem: p for p in written}, inputs)
    if record is not None:
        return {}
    say_redone("metrics", problems)
    probes, m = list(plan.probes), plan.config.metrics
    if plan.ks.analysis and (m.cka or m.embedding):
        activations.require(paths, probes, "computing the metrics again")
    ids = plan.source.sample_ids
    steps = len(plan.ks.nnts) + len(plan.models) * len(plan.ks.nntp) + (ANALYSIS_STEPS if plan.ks.analysis else 0)
    with Progress(f"metrics ({len(probes)} probe points)", steps, "steps") as progress:
        core = metric_tables({p.key: scan(paths, p) for p in probes}, probes, ids, plan.ks, m.sample_block,
                             per_sample="within" if m.per_sample == "none" else m.per_sample, tick=progress.step,
                             counted=counted_intersections(plan, paths))
        extra = (run_analysis(_analysis_inputs(plan, paths, core), AnalysisSettings.from_config(m), progress.step)
                 if plan.ks.analysis else {})
    tables = {"nnts": (core.nnts, schemas.NNTS), "nntp": (core.nntp, schemas.NNTP),
              "nntp_partners": (core.partners, schemas.NNTP_PARTNERS)}
    if m.per_sample != "none":
        tables["per_sample"] = (core.per_sample, schemas.PER_SAMPLE)
    layers = pl.DataFrame([(p.model, p.layer, p.position, p.dim, "x".join(map(str, p.shape)), p.reduction)
                           for p in probes], schema={"model": pl.String, "layer": pl.String, "position": pl.Int64,
                                                     "dim": pl.Int64, "shape": pl.String, "reduction": pl.String},
                          orient="row")
    e = core.edges.filter(pl.col("k") == plan.ks.nntp[0]).select("model", "layer", pl.col("n_edges").alias("n_edges_k"))
    layers = layers.join(e, on=["model", "layer"], how="left", validate="1:1")
    if extra:
        layers = layers.join(extra.pop("layer_stats").drop("position"), on=["model", "layer"], how="left",
                             validate="1:1")
        tables |= {name: (table, None) for name, table in extra.items()}
    tables["layers"] = (layers, schemas.LAYERS)
    for name, (table, schema) in tables.items():
        write_parquet(table.to_arrow(), paths.metric(name), schema)
    mark_files(marker, {name: paths.metric(name) for name in tables}, {"tables": sorted(tables)}, inputs)
    log(f"metrics -> {paths.metrics_dir}")
    return {}


def _recorded_tables(marker) -> list[str]:
    """The optional tables a previous metrics run recorded (so that a damaged one is noticed)."""
    try:
        return [t for t in read_json(marker).get("tables", []) if t not in WRITTEN]
    except (OSError, ValueError, AttributeError):
        return []


def _analysis_inputs(plan: RunPlan, paths: RunPaths, core) -> AnalysisInputs:
    """Each probe point's first `ks.analysis_read` ranks as (n, k) arrays, the most recently read
    ones kept up to NEIGHBOUR_CACHE_BYTES (the analysis reads one probe point, or two, at a time, so
    memory stays flat however many probe points a sweep has)."""
    k_read = plan.ks.analysis_read
    cache: OrderedDict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def neighbours(p: ProbePoint, k: int) -> tuple[np.ndarray, np.ndarray]:
        if p.key in cache:
            cache.move_to_end(p.key)
        else:
            t = scan(paths, p).filter(pl.col("rank") < k_read).sort("sample_id", "rank").collect()
            cache[p.key] = (t["neighbour_id"].to_numpy().reshape(-1, k_read), t["distance"].to_numpy().reshape(-1, k_read))
            while len(cache) > 1 and sum(a.nbytes + b.nbytes for a, b in cache.values()) > NEIGHBOUR_CACHE_BYTES:
                cache.popitem(last=False)
        ids, dist = cache[p.key]
        return ids[:, :k], dist[:, :k]

    def features(p: ProbePoint) -> np.ndarray | None:
        f = paths.activations(p.model, p.layer)
        return np.load(f, mmap_mode="r") if f.is_file() else None

    ks = list(plan.ks.analysis)
    return AnalysisInputs(
        sample_ids=plan.source.sample_ids, labels=plan.source.labels, probes=list(plan.probes), ks=ks,
        neighbours=neighbours, features=features, nnts=core.nnts,
        per_sample=core.per_sample.filter(pl.col("k").is_in(ks)), metric=plan.config.knn.metric,
    )
