from collections import defaultdict

import numpy as np
import polars as pl
import pytest

from nnts_ray.analysis.per_sample import most_changed, per_class_means
from nnts_ray.plan import ProbePoint

PROBES = [ProbePoint(*p) for p in [("m", "in", 0), ("m", "conv", 1), ("m", "out", 3), ("other", "x", 0)]]


def _per_sample(rng: np.random.Generator, ids: np.ndarray, pairs: list[tuple], k: int) -> pl.DataFrame:
    """A per-sample NNTS table in the core's schema with random Jaccard values (ties included)."""
    frames = []
    for (ma, la), (mb, lb) in pairs:
        m = rng.integers(0, k + 1, len(ids))
        frames.append(pl.DataFrame({"sample_id": ids, "model_a": ma, "layer_a": la, "model_b": mb, "layer_b": lb,
                                    "k": k, "intersection": m, "jaccard": m / (2 * k - m)}))
    return pl.concat(frames)


def test_per_class_means_match_a_plain_loop(sample_ids):
    rng = np.random.default_rng(0)
    ids, labels = sample_ids(90), rng.integers(0, 4, 90)
    df = _per_sample(rng, ids, [(("m", "in"), ("m", "conv")), (("m", "in"), ("other", "x"))], 6)
    got = per_class_means(df, ids, labels)
    sums = defaultdict(list)
    label_of = dict(zip(ids.tolist(), labels.tolist()))
    for row in df.iter_rows(named=True):
        cell = (row["model_a"], row["layer_a"], row["model_b"], row["layer_b"], row["k"], label_of[row["sample_id"]])
        sums[cell].append(row["jaccard"])
    assert got.height == len(sums)
    for row in got.iter_rows():
        assert row[6] == pytest.approx(np.mean(sums[row[:6]])) and row[7] == len(sums[row[:6]])
    assert got.schema == {"model_a": pl.String, "layer_a": pl.String, "model_b": pl.String, "layer_b": pl.String,
                          "k": pl.Int64, "label": pl.Int64, "jaccard_mean": pl.Float64, "n": pl.Int64}


def test_most_changed_lists_the_lowest_jaccard_between_consecutive_points(sample_ids):
    rng = np.random.default_rng(1)
    ids = sample_ids(40)
    pairs = [
        (("m", "conv"), ("m", "in")),  # consecutive, given in reverse chain order
        (("m", "conv"), ("m", "out")),
        (("m", "in"), ("m", "out")),  # not consecutive
        (("m", "in"), ("other", "x")),  # cross-model
    ]
    df = _per_sample(rng, ids, pairs, 4)
    got = most_changed(df, PROBES, top=5)
    listed_pairs = got.select("model", "layer_a", "layer_b").unique(maintain_order=True).rows()
    assert listed_pairs == [("m", "in", "conv"), ("m", "conv", "out")]
    for layer_a, layer_b, source in (("in", "conv", ("conv", "in")), ("conv", "out", ("conv", "out"))):
        part = df.filter(pl.col("layer_a") == source[0], pl.col("layer_b") == source[1])
        expected = sorted(zip(part["jaccard"], part["sample_id"]))[:5]
        listed = got.filter(pl.col("layer_a") == layer_a, pl.col("layer_b") == layer_b)
        assert list(zip(listed["jaccard"], listed["sample_id"])) == expected
        assert listed["rank"].to_list() == [0, 1, 2, 3, 4]


def test_per_class_means_refuse_samples_without_a_label(sample_ids):
    rng = np.random.default_rng(2)
    ids = sample_ids(30)
    df = _per_sample(rng, ids, [(("m", "in"), ("m", "conv"))], 3)
    with pytest.raises(ValueError, match="no label"):
        per_class_means(df, ids[:-1], rng.integers(0, 3, 29))  # the last sample has no label
    with pytest.raises(ValueError, match="no label"):
        per_class_means(df, ids[1:], rng.integers(0, 3, 29))  # nor has the first
