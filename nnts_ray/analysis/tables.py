"""Explicit schemas of the tables the analysis stage returns (written as metrics/<name>.parquet)."""

from __future__ import annotations

from typing import Any, Mapping

import polars as pl
import pyarrow as pa

PAIR_KEYS = ["model_a", "layer_a", "model_b", "layer_b", "k"]  # one cell of an NNTS matrix
_PAIR = [(name, pa.string()) for name in PAIR_KEYS[:4]]

CKA = pa.schema(
    _PAIR
    + [
        ("cka", pa.float64()),  # linear CKA from unbiased HSIC; null when a side has no variance
        ("dim_a", pa.int64()),  # feature dims actually used (after random projection, if any)
        ("dim_b", pa.int64()),
        ("projected", pa.bool_()),  # a side was randomly projected to cka_max_dim (CKA then approximate)
    ]
)

NNTS_NULL = pa.schema(
    _PAIR
    + [
        ("k", pa.int64()),
        ("jaccard", pa.float64()),  # observed NNTS (mean per-sample Jaccard)
        ("null_mean", pa.float64()),
        ("null_std", pa.float64()),
        ("z", pa.float64()),  # (jaccard - null_mean) / null_std; null when null_std == 0
        ("p_value", pa.float64()),  # one-sided: (1 + #{null >= observed}) / (1 + permutations)
        ("permutations", pa.int64()),
    ]
)

PER_CLASS = pa.schema(
    _PAIR + [("k", pa.int64()), ("label", pa.int64()), ("jaccard_mean", pa.float64()), ("n", pa.int64())]
)

MOST_CHANGED = pa.schema(
    [
        ("model", pa.string()),
        ("layer_a", pa.string()),  # the earlier of two consecutive probe points
        ("layer_b", pa.string()),
        ("k", pa.int64()),
        ("rank", pa.int64()),  # 0 = lowest Jaccard (most changed); ties by sample_id
        ("sample_id", pa.int64()),
        ("jaccard", pa.float64()),
    ]
)

NNTP_PARTNERS = pa.schema(
    [("model", pa.string()), ("k", pa.int64()), ("sample_id", pa.int64()), ("persistent_partners", pa.int64())]
)

MONOTONICITY = pa.schema(
    [
        ("model", pa.string()),
        ("k", pa.int64()),
        ("spearman_rho", pa.float64()),  # NNTS vs |position_a - position_b|; negative = decays with distance
        ("p_value", pa.float64()),  # optimistic: the pairs of one matrix are not independent
        ("n_pairs", pa.int64()),
    ]
)


def layer_stats_schema(ks: list[int], labelled: bool) -> pa.Schema:
    """One row per probe point, merged 1:1 into layers.parquet on (model, layer, position)."""
    fields = [
        ("model", pa.string()),
        ("layer", pa.string()),
        ("position", pa.int64()),
        ("twonn_id", pa.float64()),  # TwoNN intrinsic dimension; null when too few usable samples
        ("twonn_n_used", pa.int64()),  # ratios in the fit (after dropping zeros and the discarded tail)
        ("twonn_n_zero", pa.int64()),  # samples dropped: an exact duplicate made r1 = 0
        ("twonn_discard", pa.float64()),  # fraction of the largest ratios left out of the fit
    ]
    if labelled:
        fields.append(("label_agreement_chance", pa.float64()))  # expected value for random neighbours
        fields += [(f"label_agreement_k{k}", pa.float64()) for k in ks]
    return pa.schema(fields)


def frame(columns: Mapping[str, Any], schema: pa.Schema) -> pl.DataFrame:
    """Build a table from column arrays or lists with exactly the schema's names and types."""
    return pl.from_arrow(pa.table({name: columns[name] for name in schema.names}, schema=schema))


def from_rows(rows: list[tuple], schema: pa.Schema) -> pl.DataFrame:
    """Build a table from row tuples in the schema's column order (None becomes null)."""
    return pl.from_arrow(pa.Table.from_pylist([dict(zip(schema.names, row)) for row in rows], schema=schema))


def conform(df: pl.DataFrame, schema: pa.Schema) -> pl.DataFrame:
    """Select and cast a Polars result to the schema (strict: a failed cast is a bug, not data)."""
    target = pl.from_arrow(schema.empty_table()).schema
    return df.select(schema.names).cast(dict(target))
