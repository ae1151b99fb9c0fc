"""Per-sample views of NNTS and NNTP: class means, the samples that change most, persistent partners."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import polars as pl

from nnts_ray.analysis import tables
from nnts_ray.analysis.graphs import connections
from nnts_ray.analysis.probes import Probe, within_model


def per_class_means(per_sample: pl.DataFrame, sample_ids: np.ndarray, labels: np.ndarray) -> pl.DataFrame:
    """Mean per-sample Jaccard by true label, for every (pair, k) in `per_sample` (PER_CLASS schema).

    per_sample: the core's per-sample NNTS table (sample_id, model_a, layer_a, model_b, layer_b, k,
    jaccard, …). Every sample must have a label; the mean is over the samples present.
    """
    label_of = pl.DataFrame({"sample_id": sample_ids, "label": labels}, schema={"sample_id": pl.Int64, "label": pl.Int64})
    df = (
        per_sample.join(label_of, on="sample_id", validate="m:1")
        .group_by([*tables.PAIR_KEYS, "label"])
        .agg(jaccard_mean=pl.col("jaccard").mean(), n=pl.len())
        .sort([*tables.PAIR_KEYS, "label"])
    )
    return tables.conform(df, tables.PER_CLASS)


def most_changed(per_sample: pl.DataFrame, probes: list[Probe], top: int) -> pl.DataFrame:
    """The `top` lowest-Jaccard samples between consecutive probe points of each model, per k.

    Ties are broken by sample_id so the list is deterministic (MOST_CHANGED schema).
    """
    df = within_model(per_sample, probes, keys=["k", "sample_id"])
    df = (
        df.filter(pl.col("step_b") - pl.col("step_a") == 1)
        .sort(["model", "step_a", "k", "jaccard", "sample_id"])
        .with_columns(rank=pl.int_range(pl.len(), dtype=pl.Int64).over(["model", "layer_a", "layer_b", "k"]))
        .filter(pl.col("rank") < top)
    )
    return tables.conform(df, tables.MOST_CHANGED)


def persistent_partners(chain: Sequence[np.ndarray]) -> np.ndarray:
    """Per sample, the partners j with {i, j} connected (either direction) at every probe point: (n,) int64.

    chain: each probe point's (n, k) row positions, in chain order. This is alpha = 0 persistence
    from the first to the last probe point; the sum over samples is twice NNTP's T[first, last].
    """
    kept = connections(chain[0])  # (n, n) bool, symmetric
    for rows in chain[1:]:
        kept = kept.multiply(connections(rows))  # logical and: only pairs stored on both sides remain
    return np.diff(kept.tocsr().indptr).astype(np.int64)
