"""Explicit Arrow schemas of every table a run writes (SPEC §4). Readers and writers use these."""

from __future__ import annotations

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

SAMPLES_REQUIRED = pa.schema([("sample_id", pa.int64()), ("label", pa.int64())])

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
