"""Probe points as a table, and pair tables oriented along each model's chain."""

from __future__ import annotations

import polars as pl

from nnts_ray.plan import ProbePoint


def probe_table(probes: list[ProbePoint]) -> pl.DataFrame:
    """model, layer, position, and step: the probe's index within its own model's chain."""
    df = pl.DataFrame([(p.model, p.layer, p.position) for p in probes],
                      schema={"model": pl.String, "layer": pl.String, "position": pl.Int64}, orient="row")
    return df.with_columns(step=pl.int_range(pl.len(), dtype=pl.Int64).over("model"))


def within_model(pairs: pl.DataFrame, probes: list[ProbePoint], keys: list[str]) -> pl.DataFrame:
    """Same-model rows of a (model_a, layer_a, model_b, layer_b, *keys, …) table, one per unordered pair.

    Adds model, position_a/b and step_a/b; orients each row so that a precedes b in the chain (values
    are symmetric in a and b), drops the diagonal and keeps the first row of a pair given both ways.
    """
    table = probe_table(probes)
    sides = {s: table.rename({c: f"{c}_{s}" for c in table.columns}) for s in "ab"}
    df = (
        pairs.join(sides["a"], on=["model_a", "layer_a"], validate="m:1")
        .join(sides["b"], on=["model_b", "layer_b"], validate="m:1")
        .filter((pl.col("model_a") == pl.col("model_b")) & (pl.col("step_a") != pl.col("step_b")))
    )
    swap = pl.col("step_a") > pl.col("step_b")
    df = df.with_columns(
        [pl.col("model_a").alias("model")]
        + [
            pl.when(swap).then(pl.col(f"{c}_{other}")).otherwise(pl.col(f"{c}_{own}")).alias(f"{c}_{own}")
            for c in ("layer", "position", "step")
            for own, other in (("a", "b"), ("b", "a"))
        ]
    )
    return df.unique(subset=["model", "layer_a", "layer_b", *keys], keep="first", maintain_order=True)
