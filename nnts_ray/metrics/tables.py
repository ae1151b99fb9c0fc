"""The metric tables of a set of probe points, from their neighbour tables: what the pipeline's
metrics stage writes and what the notebook API returns — one function, so both are the same code."""

from __future__ import annotations

from typing import Callable, Mapping, NamedTuple

import numpy as np
import polars as pl

from nnts_ray import schemas
from nnts_ray.metrics.nnts import nnts
from nnts_ray.metrics.nntp import check_identity, nntp
from nnts_ray.plan import Ks, ProbePoint


class MetricTables(NamedTuple):
    nnts: pl.DataFrame  # schemas.NNTS
    per_sample: pl.DataFrame  # schemas.PER_SAMPLE (the pairs asked for)
    nntp: pl.DataFrame  # schemas.NNTP
    edges: pl.DataFrame  # model, layer, k, n_edges = |E_v|
    partners: pl.DataFrame  # schemas.NNTP_PARTNERS


def metric_tables(
    tables: Mapping[tuple[str, str], pl.LazyFrame | pl.DataFrame],
    probes: list[ProbePoint],
    sample_ids: np.ndarray,
    ks: Ks,
    sample_block: int = 20000,
    per_sample: str = "within",
    tick: Callable[[str], None] = lambda note: None,
    counted: Mapping[int, np.ndarray] | None = None,
) -> MetricTables:
    """NNTS for every pair of `probes` (any models) at ks.nnts, NNTP along each model's chain at
    ks.nntp for every ks.alpha (the identity Σ T = |E_v| asserted for alpha = 0). `counted`: the
    per-sample intersections of the set-only k (ks.sets), (pairs, n) in combinations order."""
    frames = [tables[p.key].lazy() for p in probes]
    nnts_table, per_sample_table = nnts(frames, probes, sample_ids, list(ks.nnts), sample_block, per_sample, tick,
                                        counted)
    runs, edges, partners = [], [], []
    for model in dict.fromkeys(p.model for p in probes):
        chain = [p for p in probes if p.model == model]
        name_at = pl.DataFrame({"position": [p.position for p in chain], "layer": [p.layer for p in chain]},
                               schema={"position": pl.Int64, "layer": pl.String})
        for k in ks.nntp:
            result = nntp([(p.position, tables[p.key].lazy()) for p in chain], sample_ids, k, list(ks.alpha),
                          sample_block)
            if 0 in ks.alpha:
                check_identity(result.runs, result.edges)
            runs.append(
                result.runs.join(name_at.rename({"position": "first", "layer": "layer_first"}), on="first", validate="m:1")
                .join(name_at.rename({"position": "last", "layer": "layer_last"}), on="last", validate="m:1")
                .with_columns(model=pl.lit(model), k=pl.lit(k, pl.Int64))
                .sort("alpha", "first", "last")
                .select(schemas.NNTP.names)
            )
            edges.append(result.edges.join(name_at, on="position", validate="1:1").with_columns(
                model=pl.lit(model), k=pl.lit(k, pl.Int64)).select("model", "layer", "k", "n_edges"))
            partners.append(schemas.frame({"model": [model] * len(sample_ids), "k": np.full(len(sample_ids), k),
                                           "sample_id": sample_ids, "persistent_partners": result.partners},
                                          schemas.NNTP_PARTNERS))
            tick(f"NNTP {model} k={k}")
    empty = {name: pl.from_arrow(schema.empty_table()) for name, schema in
             (("nntp", schemas.NNTP), ("partners", schemas.NNTP_PARTNERS))}
    return MetricTables(
        nnts=nnts_table,
        per_sample=per_sample_table,
        nntp=pl.concat(runs) if runs else empty["nntp"],
        edges=pl.concat(edges) if edges else pl.DataFrame(schema={"model": pl.String, "layer": pl.String,
                                                                   "k": pl.Int64, "n_edges": pl.Int64}),
        partners=pl.concat(partners) if partners else empty["partners"],
    )
