import dataclasses

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from nnts_ray.analysis import tables
from nnts_ray.analysis.stage import AnalysisInputs, AnalysisSettings, run_analysis
from nnts_ray.config import ConfigError
from nnts_ray.schemas import PER_SAMPLE

N, KS = 200, [4, 9]
PROBES = [("m", "in", 0), ("m", "hidden", 2), ("m", "relu", 3), ("m", "out", 5), ("n", "in", 0), ("n", "out", 1)]


@pytest.fixture(scope="module")
def inputs(knn) -> AnalysisInputs:
    """Two small 'models' over the same samples, exact neighbour tables from scikit-learn."""
    rng = np.random.default_rng(0)
    ids = (1000 + 7 * np.arange(N)).astype(np.int64)
    labels = rng.integers(0, 3, N)
    x = rng.standard_normal((N, 10)) + 3.0 * labels[:, None]
    hidden = x @ rng.standard_normal((10, 16))
    feats = {("m", "in"): x, ("m", "hidden"): hidden, ("m", "relu"): np.maximum(hidden, 0),
             ("m", "out"): np.maximum(hidden, 0) @ rng.standard_normal((16, 3)), ("n", "in"): x,
             ("n", "out"): rng.standard_normal((N, 5))}
    feats = {key: f.astype(np.float32) for key, f in feats.items()}
    tables_ = {key: knn(f, max(KS), ids) for key, f in feats.items()}
    return AnalysisInputs(
        sample_ids=ids, labels=labels, probes=PROBES, ks=KS,
        neighbours=lambda m, l, k: (tables_[m, l][0][:, :k], tables_[m, l][1][:, :k]),
        features=lambda m, l: feats[m, l],
    )


def _reference_per_sample(ctx: AnalysisInputs) -> pl.DataFrame:
    """The per-sample NNTS table the core writes, computed with Python sets."""
    rows = []
    for k in ctx.ks:
        for i, (ma, la, _) in enumerate(ctx.probes):
            for mb, lb, _ in ctx.probes[i + 1 :]:
                a, b = ctx.neighbours(ma, la, k)[0], ctx.neighbours(mb, lb, k)[0]
                for sid, ra, rb in zip(ctx.sample_ids, a.tolist(), b.tolist()):
                    m = len(set(ra) & set(rb))
                    rows.append((int(sid), ma, la, mb, lb, k, m, m / len(set(ra) | set(rb))))
    return pl.DataFrame(rows, schema=PER_SAMPLE.names, orient="row")


def _polars_schema(schema) -> pl.Schema:
    return pl.from_arrow(schema.empty_table()).schema


def test_stage_returns_every_table_with_its_schema(inputs):
    out = run_analysis(inputs, AnalysisSettings(permutations=3, nntp_ks=[4], most_changed=3))
    expected = {"layer_stats": tables.layer_stats_schema(KS, True), "nnts_null": tables.NNTS_NULL,
                "per_class": tables.PER_CLASS, "most_changed": tables.MOST_CHANGED,
                "nntp_partners": tables.NNTP_PARTNERS, "monotonicity": tables.MONOTONICITY, "cka": tables.CKA}
    assert out.keys() == expected.keys()
    for name, schema in expected.items():
        assert out[name].schema == _polars_schema(schema), name
    assert out["layer_stats"].select("model", "layer", "position").rows() == PROBES
    assert out["nnts_null"].height == 15 * len(KS) and out["cka"].height == 21
    assert out["most_changed"].height == 4 * len(KS) * 3 and out["nntp_partners"].height == 2 * N
    assert out["monotonicity"].select("model", "k").rows() == [("m", 4), ("m", 9), ("n", 4), ("n", 9)]


def test_stage_values_agree_with_references(inputs):
    reference = _reference_per_sample(inputs)
    settings = AnalysisSettings(permutations=3, nntp_ks=[4])
    own = run_analysis(inputs, settings)
    given = run_analysis(dataclasses.replace(inputs, per_sample=reference), settings)
    for name in ("per_class", "most_changed", "monotonicity", "nnts_null"):
        assert_frame_equal(own[name], given[name])
    observed = reference.group_by(tables.PAIR_KEYS).agg(pl.col("jaccard").mean().alias("expected"))
    null = own["nnts_null"].join(observed, on=tables.PAIR_KEYS, validate="1:1")
    assert np.allclose(null["jaccard"], null["expected"])
    ids, labels = inputs.neighbours("m", "relu", 9)[0], inputs.labels
    agreement = np.mean(labels[(ids - 1000) // 7] == labels[:, None])
    stats = own["layer_stats"].row(2, named=True)
    assert stats["label_agreement_k9"] == pytest.approx(agreement) and stats["twonn_n_zero"] == 0
    diagonal = own["cka"].filter((pl.col("model_a") == pl.col("model_b")) & (pl.col("layer_a") == pl.col("layer_b")))
    assert np.allclose(diagonal["cka"], 1.0)


def test_stage_leaves_out_what_it_has_no_inputs_for(inputs):
    bare = dataclasses.replace(inputs, labels=None, features=lambda m, l: None)
    out = run_analysis(bare, AnalysisSettings(nntp_ks=[4]))
    assert out.keys() == {"layer_stats", "most_changed", "nntp_partners", "monotonicity"}
    assert not any(c.startswith("label_agreement") for c in out["layer_stats"].columns)


def test_null_is_seeded(inputs):
    settings = AnalysisSettings(permutations=2, seed=4, nntp_ks=[4])
    first, second = run_analysis(inputs, settings)["nnts_null"], run_analysis(inputs, settings)["nnts_null"]
    assert_frame_equal(first, second)


@pytest.mark.parametrize("bad", [{"permutations": 1}, {"twonn_discard": 1.0}, {"cka_batch": 0}])
def test_settings_name_the_bad_value(bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        AnalysisSettings(**bad)


def test_a_single_probe_point_gives_empty_pair_tables(inputs):
    single = dataclasses.replace(inputs, probes=PROBES[:1], features=lambda m, l: None)
    out = run_analysis(single, AnalysisSettings(permutations=2, nntp_ks=[4]))
    assert out["nnts_null"].is_empty() and out["most_changed"].is_empty() and out["monotonicity"].is_empty()
    assert out["per_class"].is_empty() and out["nntp_partners"].height == N
