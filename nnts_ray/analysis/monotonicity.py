"""Does similarity decay with distance along the chain? One Spearman correlation per model and k."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats

from nnts_ray import schemas
from nnts_ray.analysis.chains import within_model
from nnts_ray.plan import ProbePoint


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
    """Spearman rho and its two-sided p-value; None when undefined (< 3 points or a constant side)."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None, None
    result = stats.spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)


def monotonicity(nnts: pl.DataFrame, probes: list[ProbePoint]) -> pl.DataFrame:
    """Spearman correlation of NNTS(a, b) with |position_a - position_b| over each model's pairs.

    nnts: one row per (model_a, layer_a, model_b, layer_b, k) with its `jaccard`; cross-model pairs
    and the diagonal are ignored. A strongly negative rho is the paper's "decays with distance".
    """
    df = within_model(nnts, probes, keys=["k"]).with_columns(
        distance=(pl.col("position_b") - pl.col("position_a")).abs()
    )
    rows = []
    for (model, k), group in df.group_by(["model", "k"]):
        rho, p = spearman(group["distance"].to_numpy(), group["jaccard"].to_numpy())
        rows.append((model, k, rho, p, group.height))
    order = {model: i for i, model in enumerate(dict.fromkeys(p.model for p in probes))}
    rows.sort(key=lambda row: (order[row[0]], row[1]))  # models in probe order, then k
    return schemas.from_rows(rows, schemas.MONOTONICITY)
