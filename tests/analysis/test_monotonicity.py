import numpy as np
import polars as pl
import pytest
from scipy import stats

from nnts_ray.analysis.monotonicity import monotonicity
from nnts_ray.plan import ProbePoint

PROBES = [ProbePoint(*p) for p in [("m", "a", 0), ("m", "b", 1), ("m", "c", 4), ("m", "d", 5), ("n", "a", 0), ("n", "b", 1)]]


def _nnts(values: dict[tuple, float], k: int = 10) -> pl.DataFrame:
    return pl.DataFrame(
        [(ma, la, mb, lb, k, v) for ((ma, la), (mb, lb)), v in values.items()],
        schema=["model_a", "layer_a", "model_b", "layer_b", "k", "jaccard"], orient="row",
    )


def test_monotonicity_matches_scipy_on_the_within_model_pairs():
    rng = np.random.default_rng(0)
    layers = [p for p in PROBES if p.model == "m"]
    values = {((a.model, a.layer), (b.model, b.layer)): float(rng.random()) for i, a in enumerate(layers) for b in layers[i + 1 :]}
    noise = {
        (("m", "a"), ("n", "b")): 0.9,  # cross-model
        (("m", "b"), ("m", "b")): 1.0,  # diagonal
        (("m", "c"), ("m", "a")): values[("m", "a"), ("m", "c")],  # a pair given again, reversed
    }
    got = monotonicity(_nnts(values | noise), PROBES)
    pos = {p.layer: p.position for p in layers}
    distance = [abs(pos[la] - pos[lb]) for (_, la), (_, lb) in values]
    expected = stats.spearmanr(distance, list(values.values()))
    row = got.row(0, named=True)
    assert (row["model"], row["k"], row["n_pairs"]) == ("m", 10, 6)
    assert row["spearman_rho"] == pytest.approx(expected.statistic) and row["p_value"] == pytest.approx(expected.pvalue)


def test_similarity_decaying_with_distance_gives_minus_one_and_too_few_pairs_gives_null():
    pos = {p.layer: p.position for p in PROBES if p.model == "m"}
    values = {(("m", a), ("m", b)): 1.0 / (1 + abs(pos[a] - pos[b])) for a in pos for b in pos if a < b}
    values[("n", "a"), ("n", "b")] = 0.5
    got = monotonicity(_nnts(values), PROBES).sort("model")
    assert got["spearman_rho"].to_list() == [pytest.approx(-1.0), None]
    assert got["n_pairs"].to_list() == [6, 1]
