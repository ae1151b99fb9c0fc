"""Per-sample views of NNTS: class means and the samples whose neighbourhoods change most."""

from __future__ import annotations

import numpy as np
import polars as pl

from nnts_ray import schemas
from nnts_ray.analysis.chains import within_model
from nnts_ray.plan import ProbePoint


def per_class_means(per_sample: pl.DataFrame, sample_ids: np.ndarray, labels: np.ndarray) -> pl.DataFrame:
    """Mean per-sample Jaccard by true label, for every (pair, k) in `per_sample` (PER_CLASS schema).

    per_sample: the core's per-sample NNTS table (sample_id, model_a, layer_a, model_b, layer_b, k,
    jaccard, …). Every sample must have a label; the mean is over the samples present.
    """
    label_of = pl.DataFrame({"sample_id": sample_ids, "label": labels}, schema={"sample_id": pl.Int64, "label": pl.Int64})
    df = (
        per_sample.join(label_of, on="sample_id", validate="m:1")
        .group_by([*schemas.PAIR_KEYS, "label"])
        .agg(jaccard_mean=pl.col("jaccard").mean(), n=pl.len())
        .sort([*schemas.PAIR_KEYS, "label"])
    )
    return schemas.conform(df, schemas.PER_CLASS)


def most_changed(per_sample: pl.DataFrame, probes: list[ProbePoint], top: int) -> pl.DataFrame:
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
    return schemas.conform(df, schemas.MOST_CHANGED)
