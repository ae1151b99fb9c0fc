"""Explicit Arrow schemas of every table a run writes (docs/RUN_DIRECTORY.md), and the helpers that
build tables in exactly those schemas. Writers, readers and the dashboard all take columns from here."""

from __future__ import annotations

from typing import Any, Mapping

import polars as pl
import pyarrow as pa

NEIGHBOURS = pa.schema(
    [
        ("sample_id", pa.int64()),
        ("rank", pa.int32()),  # 0 = nearest (self excluded by index)
        ("neighbour_id", pa.int64()),
        ("distance", pa.float32()),  # Euclidean distance (not squared); cosine: 1 - cos similarity
    ]
)

# How neighbour tables are encoded: ranks count up and distances rise slowly within a sample, so
# delta and byte-stream-split encodings (+ zstd) take 4.2 bytes a row instead of 7.1 (measured at
# k = 12,000), and read faster.
# Rows of a part file are grouped in rank bands [0, 128), [128, 1024), [1024, 8192), [8192, k), each
# band its own row groups (sample_id, rank order inside a band): row-group statistics on `rank` then
# let a reader of small k (k = 15 out of a k = 12,000 table) skip all but the first band.
NEIGHBOUR_RANK_BANDS = (128, 1024, 8192)

NEIGHBOURS_ENCODING = {
    "use_dictionary": ["sample_id"],
    "column_encoding": {"rank": "DELTA_BINARY_PACKED", "neighbour_id": "DELTA_BINARY_PACKED",
                        "distance": "BYTE_STREAM_SPLIT"},
}

# intersections/k=<k>/part-*.parquet: for a k whose neighbour sets were intersected during the search
# instead of stored as ranks, per sample and pair of probe points a < b (chain order, any models).
INTERSECTIONS = pa.schema(
    [
        ("sample_id", pa.int64()),
        ("model_a", pa.string()),
        ("layer_a", pa.string()),
        ("model_b", pa.string()),
        ("layer_b", pa.string()),
        ("intersection", pa.int32()),  # |K_a ∩ K_b| of the sample
    ]
)

SAMPLES_REQUIRED = pa.schema([("sample_id", pa.int64()), ("label", pa.int64())])

PAIR_KEYS = ["model_a", "layer_a", "model_b", "layer_b", "k"]  # one cell of an NNTS matrix
_PAIR = [(name, pa.string()) for name in PAIR_KEYS[:4]]

NNTS = pa.schema(
    [
        ("model_a", pa.string()),
        ("layer_a", pa.string()),
        ("model_b", pa.string()),
        ("layer_b", pa.string()),
        ("k", pa.int64()),
        ("jaccard", pa.float64()),
        ("overlap", pa.float64()),
        ("chance_jaccard", pa.float64()),
        ("chance_overlap", pa.float64()),
        ("n_samples", pa.int64()),
    ]
)

NNTP = pa.schema(
    [
        ("model", pa.string()),
        ("layer_first", pa.string()),
        ("layer_last", pa.string()),
        ("k", pa.int64()),
        ("alpha", pa.int64()),
        ("n_pairs", pa.int64()),
    ]
)

PER_SAMPLE = pa.schema(
    [
        ("sample_id", pa.int64()),
        ("model_a", pa.string()),
        ("layer_a", pa.string()),
        ("model_b", pa.string()),
        ("layer_b", pa.string()),
        ("k", pa.int64()),
        ("intersection", pa.int64()),
        ("jaccard", pa.float64()),
    ]
)

# layers.parquet: these columns always; per-layer statistics (twonn_id, label_agreement_k*, …) are
# added as extra float64 columns by the analysis stage where they exist.
LAYERS = pa.schema(
    [
        ("model", pa.string()),
        ("layer", pa.string()),
        ("position", pa.int64()),
        ("dim", pa.int64()),
        ("shape", pa.string()),  # the probe point's output shape per sample, e.g. "6x28x28"
        ("reduction", pa.string()),
        ("n_edges_k", pa.int64()),  # undirected connected pairs |E_v| at the first nntp k (null if none)
    ]
)

# Tables of the analysis suite (metrics/<name>.parquet).
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


EMBEDDING = pa.schema(
    [
        ("model", pa.string()),
        ("layer", pa.string()),
        ("sample_id", pa.int64()),
        ("x", pa.float32()),  # first principal component of the probe point's features (PCA, centred)
        ("y", pa.float32()),  # second principal component
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
        ("pca_explained", pa.float64()),  # share of the variance the 2-D map (metrics/embedding) shows
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
