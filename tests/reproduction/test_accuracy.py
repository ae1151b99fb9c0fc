"""Test-split accuracy of a run's weights, on tiny IDX files and a tiny model written here."""

from __future__ import annotations

import numpy as np
import torch

from nnts_ray.naming import RunPaths
from nnts_ray.reproduction.accuracy import evaluate_on_test_split
from nnts_ray.reproduction.runs import load_run
from tests.data.formats import write_idx
from tests.models.tiny import TinyNet
from tests.reproduction.fakerun import CLASSES, write_run


def write_constant_model(path, label: int) -> None:
    """TinyNet that predicts `label` for every image: zero weights, a one-hot output bias."""
    net = TinyNet(in_channels=1, num_classes=CLASSES)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.fc.bias[label] = 1.0
    torch.save(net.state_dict(), path)


def test_accuracy_on_the_test_split(tmp_path):
    run_dir = write_run(tmp_path / "run")
    write_constant_model(RunPaths(run_dir).model_weights("tiny"), label=2)
    rng = np.random.default_rng(0)
    mnist = tmp_path / "mnist"
    # training labels hold no 2, test labels hold seven 2s of 20: reading the wrong split would give 0
    write_idx(mnist / "train-images-idx3-ubyte", rng.integers(0, 256, (12, 28, 28), dtype=np.uint8))
    write_idx(mnist / "train-labels-idx1-ubyte", np.zeros(12, np.uint8))
    test_labels = np.array([2] * 7 + [0] * 8 + [1] * 5, np.uint8)
    write_idx(mnist / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28), dtype=np.uint8))
    write_idx(mnist / "t10k-labels-idx1-ubyte.gz", test_labels)
    acc = evaluate_on_test_split(load_run(run_dir), str(mnist), batch=6)
    assert acc is not None and acc.n == 20 and acc.accuracy == 7 / 20


def test_no_test_split_means_not_evaluated(tmp_path):
    run = load_run(write_run(tmp_path / "run", dataset="digits"))
    assert evaluate_on_test_split(run, str(tmp_path)) is None
