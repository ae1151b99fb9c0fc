"""Per-sample views of NNTS: class means and the samples whose neighbourhoods change most."""

from __future__ import annotations

import numpy as np
import polars as pl

from nnts_ray import schemas
from nnts_ray.analysis.chains import probe_table, within_model
from nnts_ray.plan import ProbePoint


def per_class_means(per_sample: pl.DataFrame, sample_ids: np.ndarray, labels: np.ndarray) -> pl.DataFrame:
    """Mean per-sample Jaccard by true label, for every (pair, k) in `per_sample` (PER_CLASS schema).

    per_sample: the core's per-sample NNTS table (sample_id, model_a, layer_a, model_b, layer_b, k,
    jaccard, …). Every sample must have a label; the mean is over the samples present.
    """
    ids = per_sample["sample_id"].to_numpy()
    rows = np.minimum(np.searchsorted(sample_ids, ids), len(sample_ids) - 1)  # sample_ids ascending
    if not np.array_equal(sample_ids[rows], ids):
        raise ValueError("per-sample NNTS lists samples that have no label")
    df = (
        per_sample.select(*schemas.PAIR_KEYS, "jaccard")  # shares the columns: no copy of the table
        .with_columns(label=pl.Series(labels[rows], dtype=pl.Int64))
        .group_by([*schemas.PAIR_KEYS, "label"])
        .agg(jaccard_mean=pl.col("jaccard").mean(), n=pl.len())
        .sort([*schemas.PAIR_KEYS, "label"])
    )
    return schemas.conform(df, schemas.PER_CLASS)


def most_changed(per_sample: pl.DataFrame, probes: list[ProbePoint], top: int) -> pl.DataFrame:
    """The `top` lowest-Jaccard samples between consecutive probe points of each model, per k.

    Ties are broken by sample_id so the list is deterministic (MOST_CHANGED schema).
    """
    chain = probe_table(probes).with_columns(next_layer=pl.col("layer").shift(-1).over("model")).drop_nulls("next_layer")
    steps = pl.concat([chain.select(model_a="model", layer_a="layer", model_b="model", layer_b="next_layer"),
                       chain.select(model_a="model", layer_a="next_layer", model_b="model", layer_b="layer")])
    # only consecutive pairs, before `within_model` orients them (a sweep keeps many more pairs)
    near = per_sample.join(steps, on=["model_a", "layer_a", "model_b", "layer_b"], how="semi", maintain_order="left")
    df = within_model(near, probes, keys=["k", "sample_id"])
    df = (
        df.filter(pl.col("step_b") - pl.col("step_a") == 1)
        .sort(["model", "step_a", "k", "jaccard", "sample_id"])
        .with_columns(rank=pl.int_range(pl.len(), dtype=pl.Int64).over(["model", "layer_a", "layer_b", "k"]))
        .filter(pl.col("rank") < top)
    )
    return schemas.conform(df, schemas.MOST_CHANGED)
