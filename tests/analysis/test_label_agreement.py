import numpy as np
import pytest

from nnts_ray.metrics.graph import to_rows
from nnts_ray.analysis.label_agreement import chance_agreement, label_agreement


def test_separated_clusters_agree_fully(knn, sample_ids):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)  # (200,) classes of 50 > k
    x = rng.standard_normal((200, 8)) + 100.0 * labels[:, None]
    ids = sample_ids(200)
    rows = to_rows(knn(x, 10, ids)[0], ids)
    assert np.array_equal(label_agreement(rows, labels), np.ones(200))


def test_label_agreement_matches_a_plain_loop(knn, sample_ids):
    rng = np.random.default_rng(1)
    x, labels = rng.standard_normal((150, 5)), rng.integers(0, 3, 150)
    ids = sample_ids(150)
    neighbour_ids, _ = knn(x, 7, ids)
    label_of = dict(zip(ids.tolist(), labels.tolist()))
    expected = [np.mean([label_of[j] == label_of[i] for j in row]) for i, row in zip(ids.tolist(), neighbour_ids.tolist())]
    assert label_agreement(to_rows(neighbour_ids, ids), labels) == pytest.approx(expected)


def test_chance_agreement_is_the_share_of_same_label_pairs():
    labels = np.array([0, 0, 0, 1, 1, 2])
    same = sum(labels[i] == labels[j] for i in range(6) for j in range(6) if i != j)
    assert chance_agreement(labels) == pytest.approx(same / 30)
