import numpy as np
import pytest
from scipy.stats import ortho_group

from nnts_ray.analysis.cka import linear_cka


def dense_unbiased_hsic(k: np.ndarray, l: np.ndarray) -> float:
    """Textbook unbiased HSIC on n x n Gram matrices (Song et al. 2012; Nguyen et al. 2020, eq. 3)."""
    n = len(k)
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(l, 0.0)
    ones = np.ones(n)
    value = np.trace(k @ l) + (ones @ k @ ones) * (ones @ l @ ones) / ((n - 1) * (n - 2)) - 2 / (n - 2) * (ones @ k @ l @ ones)
    return value / (n * (n - 3))


def dense_cka(x: np.ndarray, y: np.ndarray) -> float:
    k, l = x @ x.T, y @ y.T
    return dense_unbiased_hsic(k, l) / np.sqrt(dense_unbiased_hsic(k, k) * dense_unbiased_hsic(l, l))


def _layers(rng: np.random.Generator, n: int = 240) -> list[np.ndarray]:
    """Related, uncentred layers of different widths, as a network would give."""
    x = rng.standard_normal((n, 12)) + 3.0
    h = np.maximum(x @ rng.standard_normal((12, 30)), 0.0) + 0.5
    out = h @ rng.standard_normal((30, 5)) + rng.standard_normal((n, 5))
    return [a.astype(np.float32) for a in (x, h, out, rng.standard_normal((n, 9)))]


def test_streaming_cka_matches_the_dense_formula():
    layers = _layers(np.random.default_rng(0))
    result = linear_cka(layers, batch=37)  # batches that do not divide n
    expected = [[dense_cka(a.astype(np.float64), b.astype(np.float64)) for b in layers] for a in layers]
    assert np.abs(result.matrix - np.array(expected)).max() < 1e-6
    assert result.dims.tolist() == [12, 30, 5, 9] and not result.projected.any()


def test_cka_is_invariant_to_rotation_and_scale(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 20)).astype(np.float32)
    rotated = (3.0 * x @ ortho_group.rvs(20, random_state=2)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = linear_cka([np.load(tmp_path / "x.npy", mmap_mode="r"), rotated], batch=64)
    assert result.matrix == pytest.approx(np.ones((2, 2)), abs=1e-6)


def test_layer_without_variance_gives_nan():
    rng = np.random.default_rng(2)
    result = linear_cka([rng.standard_normal((50, 4)), np.zeros((50, 3))])
    assert np.isnan(result.matrix[0, 1]) and np.isnan(result.matrix[1, 1]) and result.matrix[0, 0] == pytest.approx(1.0)


def test_random_projection_is_seeded_and_nearly_unbiased():
    """A wide, high-rank layer projected to 200 dims: the naive same-projection self-HSIC would pull
    its CKA values far towards 0; with independent projections they stay close to exact."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 16))
    wide = np.maximum(x @ rng.standard_normal((16, 1500)), 0.0) + rng.standard_normal((400, 1500))
    layers = [x, wide.astype(np.float32), np.tanh(x[:, :4])]
    exact = linear_cka(layers).matrix
    approx = linear_cka(layers, max_dim=200, seed=5)
    assert approx.projected.tolist() == [False, True, False] and approx.dims.tolist() == [16, 200, 4]
    assert np.abs(approx.matrix - exact).max() < 0.08  # 0.01-0.05 over seeds 0-4
    assert np.array_equal(approx.matrix, linear_cka(layers, max_dim=200, seed=5).matrix)


def test_pairs_split_over_passes_give_the_same_matrix():
    """A memory budget that fits one cross matrix at a time (one pass per pair) changes nothing."""
    rng = np.random.default_rng(9)
    layers = [rng.standard_normal((300, d)) for d in (5, 40, 7, 60)]
    one_pass = linear_cka(layers, batch=70).matrix
    many = linear_cka(layers, batch=70, budget=8 * 40 * 60).matrix
    assert np.array_equal(one_pass, many)


def test_only_the_listed_pairs_are_computed_and_equal_the_full_matrix():
    rng = np.random.default_rng(3)
    layers = [rng.normal(size=(200, d)) for d in (5, 8, 3, 6)]
    full = linear_cka(layers, batch=64).matrix
    some = linear_cka(layers, batch=64, only={(0, 1), (2, 3)}).matrix
    listed = [(0, 1), (1, 0), (2, 3), (3, 2), *[(i, i) for i in range(4)]]
    for i in range(4):
        for j in range(4):
            if (i, j) in listed:
                assert some[i, j] == pytest.approx(full[i, j], rel=1e-12, abs=1e-12)
            else:
                assert np.isnan(some[i, j])


def test_batches_capped_by_bytes_and_passes_split_change_nothing_with_projections():
    """Wide (projected) and narrow layers, read in 256-row batches (a byte cap) or in one, with all
    pairs in one pass or one pair per pass: the same CKA up to rounding (float32 projections of 256 or
    700 rows round differently: ~1e-9 here), and the same projections."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((700, 6))
    layers = [x.astype(np.float32), np.maximum(x @ rng.standard_normal((6, 90)), 0.0).astype(np.float32),
              np.tanh(x @ rng.standard_normal((6, 70))), rng.standard_normal((700, 3)) + x[:, :3]]
    whole = linear_cka(layers, max_dim=40, seed=2)
    for kwargs in ({"batch_bytes": 1}, {"budget": 8 * 40 * 40}, {"batch_bytes": 1, "budget": 1, "only": {(0, 2), (1, 2)}}):
        split = linear_cka(layers, max_dim=40, seed=2, **kwargs)
        listed = np.isfinite(split.matrix)
        assert listed.sum() == (16 if "only" not in kwargs else 8)
        assert np.allclose(split.matrix[listed], whole.matrix[listed], rtol=0, atol=1e-8)
    assert whole.projected.tolist() == [False, True, True, False]
