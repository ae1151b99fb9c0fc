import numpy as np
import pytest

from nnts_ray.analysis.twonn import twonn


def _subspace(rng: np.random.Generator, n: int, d: int, ambient: int) -> np.ndarray:
    """n standard-normal points of a d-dim linear subspace, isometrically embedded in `ambient` dims."""
    basis = np.linalg.qr(rng.standard_normal((ambient, d)))[0]  # (D, d) orthonormal columns
    return rng.standard_normal((n, d)) @ basis.T  # (n, D)


@pytest.mark.parametrize("d", [2, 5])
def test_twonn_recovers_the_dimension_of_a_linear_subspace(knn, sample_ids, d):
    x = _subspace(np.random.default_rng(d), 2000, d, 40)
    _, dist = knn(x, 2, sample_ids(len(x)))
    fit = twonn(dist, discard=0.1)
    assert fit.dim == pytest.approx(d, rel=0.08)
    assert (fit.n_used, fit.n_zero) == (1800, 0)


def test_twonn_drops_and_counts_exact_duplicates(knn, sample_ids):
    x = _subspace(np.random.default_rng(7), 1500, 3, 20)
    x = np.concatenate([x, x[:50]])  # 50 points appear twice
    _, dist = knn(x, 2, sample_ids(len(x)))
    fit = twonn(dist, discard=0.1)
    assert fit.n_zero == 100
    assert fit.n_used == int(1450 * 0.9)
    assert fit.dim == pytest.approx(3, rel=0.1)


def test_twonn_reads_cosine_tables_as_chord_distances(knn, sample_ids):
    x = _subspace(np.random.default_rng(3), 800, 4, 16) + 3.0
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    _, chord = knn(unit, 2, sample_ids(len(x)))
    cosine = (chord.astype(np.float64) ** 2 / 2).astype(np.float32)  # 1 - cos of unit vectors
    assert twonn(cosine, metric="cosine").dim == pytest.approx(twonn(chord).dim, rel=1e-3)


def test_twonn_refuses_bad_arguments():
    dist = np.ones((10, 2), np.float32)
    with pytest.raises(ValueError, match="discard"):
        twonn(dist, discard=1.0)
    with pytest.raises(ValueError, match="two neighbour"):
        twonn(dist[:, :1])
    with pytest.raises(ValueError, match="metric"):
        twonn(dist, metric="l1")
