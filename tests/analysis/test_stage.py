"""The analysis stage as one step: every table with its schema, values against references built here
(Python sets for per-sample NNTS, a plain loop for label agreement), seeded nulls, missing inputs."""

import dataclasses

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sklearn.decomposition import PCA

from nnts_ray import schemas
from nnts_ray.analysis.stage import AnalysisInputs, AnalysisSettings, run_analysis
from nnts_ray.plan import ProbePoint

N, KS = 200, [4, 9]
PROBES = [ProbePoint(*p) for p in
          [("m", "in", 0), ("m", "hidden", 2), ("m", "relu", 3), ("m", "out", 5), ("n", "in", 0), ("n", "out", 1)]]


def _reference_per_sample(sample_ids, probes, ks, neighbours) -> pl.DataFrame:
    """The per-sample NNTS table the core writes, computed with Python sets."""
    rows = []
    for k in ks:
        for i, a in enumerate(probes):
            for b in probes[i + 1 :]:
                na, nb = neighbours(a, k)[0], neighbours(b, k)[0]
                for sid, ra, rb in zip(sample_ids, na.tolist(), nb.tolist()):
                    m = len(set(ra) & set(rb))
                    rows.append((int(sid), a.model, a.layer, b.model, b.layer, k, m, m / len(set(ra) | set(rb))))
    return pl.DataFrame(rows, schema=schemas.PER_SAMPLE.names, orient="row")


def _nnts_from(per_sample: pl.DataFrame) -> pl.DataFrame:
    return per_sample.group_by(schemas.PAIR_KEYS).agg(pl.col("jaccard").mean())


@pytest.fixture(scope="module")
def inputs(knn) -> AnalysisInputs:
    """Two small 'models' over the same samples, exact neighbour tables from the brute-force reference."""
    rng = np.random.default_rng(0)
    ids = (1000 + 7 * np.arange(N)).astype(np.int64)
    labels = rng.integers(0, 3, N)
    x = rng.standard_normal((N, 10)) + 3.0 * labels[:, None]
    hidden = x @ rng.standard_normal((10, 16))
    feats = {("m", "in"): x, ("m", "hidden"): hidden, ("m", "relu"): np.maximum(hidden, 0),
             ("m", "out"): np.maximum(hidden, 0) @ rng.standard_normal((16, 3)), ("n", "in"): x,
             ("n", "out"): rng.standard_normal((N, 5))}
    feats = {key: f.astype(np.float32) for key, f in feats.items()}
    tables = {key: knn(f, max(KS), ids) for key, f in feats.items()}

    def neighbours(p: ProbePoint, k: int):
        return tables[p.key][0][:, :k], tables[p.key][1][:, :k]

    per_sample = _reference_per_sample(ids, PROBES, KS, neighbours)
    return AnalysisInputs(
        sample_ids=ids, labels=labels, probes=PROBES, ks=KS, neighbours=neighbours,
        features=lambda p: feats[p.key], nnts=_nnts_from(per_sample), per_sample=per_sample,
    )


def _polars_schema(schema) -> pl.Schema:
    return pl.from_arrow(schema.empty_table()).schema


def test_stage_returns_every_table_with_its_schema(inputs):
    out = run_analysis(inputs, AnalysisSettings(permutations=3, most_changed=3))
    expected = {"layer_stats": schemas.layer_stats_schema(KS, True), "nnts_null": schemas.NNTS_NULL,
                "per_class": schemas.PER_CLASS, "most_changed": schemas.MOST_CHANGED,
                "monotonicity": schemas.MONOTONICITY, "cka": schemas.CKA, "embedding": schemas.EMBEDDING}
    assert out.keys() == expected.keys()
    for name, schema in expected.items():
        assert out[name].schema == _polars_schema(schema), name
    assert out["layer_stats"].select("model", "layer", "position").rows() == [(p.model, p.layer, p.position)
                                                                              for p in PROBES]
    # CKA within each model by default: m has 4 probe points (10 pairs a <= b), n has 2 (3)
    assert out["nnts_null"].height == 15 * len(KS) and out["cka"].height == 13
    assert (out["cka"]["model_a"] == out["cka"]["model_b"]).all()
    assert out["most_changed"].height == 4 * len(KS) * 3 and out["embedding"].height == len(PROBES) * N
    assert out["monotonicity"].select("model", "k").rows() == [("m", 4), ("m", 9), ("n", 4), ("n", 9)]


def test_stage_values_agree_with_references(inputs):
    out = run_analysis(inputs, AnalysisSettings(permutations=3))
    observed = _nnts_from(inputs.per_sample).rename({"jaccard": "expected"})
    null = out["nnts_null"].join(observed, on=schemas.PAIR_KEYS, validate="1:1")
    assert np.allclose(null["jaccard"], null["expected"])  # the null's observed value is NNTS itself
    ids, labels = inputs.neighbours(PROBES[2], 9)[0], inputs.labels
    agreement = np.mean([np.mean([labels[(j - 1000) // 7] == labels[i] for j in row]) for i, row in enumerate(ids)])
    stats = out["layer_stats"].row(2, named=True)
    assert stats["label_agreement_k9"] == pytest.approx(agreement) and stats["twonn_n_zero"] == 0
    diagonal = out["cka"].filter((pl.col("model_a") == pl.col("model_b")) & (pl.col("layer_a") == pl.col("layer_b")))
    assert np.allclose(diagonal["cka"], 1.0)


def test_embedding_is_the_first_two_principal_components(inputs):
    out = run_analysis(inputs, AnalysisSettings())
    for p in PROBES:
        x = inputs.features(p)
        reference = PCA(2).fit(x)
        got = out["embedding"].filter(model=p.model, layer=p.layer).sort("sample_id").select("x", "y").to_numpy()
        want = reference.transform(x)
        for c in range(2):  # the same axis up to its sign
            assert abs(np.corrcoef(got[:, c], want[:, c])[0, 1]) > 0.999, (p, c)
        explained = out["layer_stats"].filter(model=p.model, layer=p.layer)["pca_explained"][0]
        assert explained == pytest.approx(reference.explained_variance_ratio_.sum(), rel=1e-3)


@pytest.mark.parametrize("fit_rows", [10_000, 150])  # all rows fitted, or a subsample
def test_embedding_is_the_same_whether_rows_are_kept_between_passes_or_read_again(monkeypatch, fit_rows):
    from nnts_ray.analysis import embedding

    x = np.random.default_rng(2).standard_normal((400, 30)).astype(np.float32) + 5
    monkeypatch.setattr(embedding, "FIT_ROWS", fit_rows)
    kept = embedding.pca2(x, batch=64)
    monkeypatch.setattr(embedding, "_CACHE_BYTES", 0)
    again = embedding.pca2(x, batch=64)
    np.testing.assert_array_equal(kept.coords, again.coords)
    assert kept.explained == again.explained


def test_stage_leaves_out_what_it_has_no_inputs_for(inputs):
    bare = dataclasses.replace(inputs, labels=None, features=lambda p: None)
    out = run_analysis(bare, AnalysisSettings())
    assert out.keys() == {"layer_stats", "most_changed", "monotonicity"}
    assert not any(c.startswith("label_agreement") for c in out["layer_stats"].columns)


def test_null_is_seeded(inputs):
    settings = AnalysisSettings(permutations=2, seed=4)
    first, second = run_analysis(inputs, settings)["nnts_null"], run_analysis(inputs, settings)["nnts_null"]
    assert_frame_equal(first, second)


def test_a_single_probe_point_gives_empty_pair_tables(inputs):
    empty = inputs.per_sample.clear()
    single = dataclasses.replace(inputs, probes=PROBES[:1], features=lambda p: None, per_sample=empty,
                                 nnts=_nnts_from(empty))
    out = run_analysis(single, AnalysisSettings(permutations=2))
    assert out["nnts_null"].is_empty() and out["most_changed"].is_empty() and out["monotonicity"].is_empty()
    assert out["per_class"].is_empty()


def test_cross_model_cka_on_request_equals_the_within_model_values(inputs):
    within = run_analysis(inputs, AnalysisSettings(most_changed=3))["cka"]
    every = run_analysis(inputs, AnalysisSettings(most_changed=3, cka_pairs="all"))["cka"]
    assert every.height == 21  # 6 probe points: every pair a <= b
    keys = ["model_a", "layer_a", "model_b", "layer_b"]
    assert_frame_equal(every.join(within.select(keys), on=keys).sort(keys), within.sort(keys))
    in_in = every.filter(layer_a="in", layer_b="in", model_a="m", model_b="n")["cka"]
    assert in_in.to_list() == [pytest.approx(1.0)]  # the same input matrix in both models
