"""MNIST / Fashion-MNIST (IDX) and CIFAR-10 (binary and python batches) from files the tests write."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from nnts_ray.config import ConfigError, DatasetConfig
from nnts_ray.data import load_dataset
from nnts_ray.data.standard import read_idx
from tests.data.formats import write_cifar_bin, write_cifar_py, write_idx, write_mnist


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_files_load_with_ids_labels_and_pixels(tmp_path, name, gz):
    written = write_mnist(tmp_path, n_train=12, n_test=6, gz=gz)
    ss = load_dataset(DatasetConfig(name=name, root=str(tmp_path)), input_size=28)
    x, y = written["train"]
    assert ss.sample_ids.tolist() == list(range(12))
    assert ss.labels.tolist() == y.tolist()
    assert ss.images.dtype == np.float32 and ss.images.shape == (12, 1, 28, 28)
    np.testing.assert_allclose(ss.images[:, 0], x / 255.0, atol=1e-7)
    assert set(ss.extra["split"]) == {"train"}


def test_split_all_continues_ids_after_train_and_test_split_alone(tmp_path):
    written = write_mnist(tmp_path / "MNIST" / "raw", n_train=9, n_test=4)  # torchvision's layout
    every = load_dataset(DatasetConfig(name="mnist", root=str(tmp_path), split="all"), input_size=28)
    assert every.sample_ids.tolist() == list(range(13))
    assert every.extra["split"].tolist() == ["train"] * 9 + ["test"] * 4
    test = load_dataset(DatasetConfig(name="mnist", root=str(tmp_path), split="test"), input_size=28)
    assert test.sample_ids.tolist() == list(range(4))
    np.testing.assert_array_equal(test.images, every.images[9:])
    np.testing.assert_array_equal(test.labels, written["test"][1])


def test_resize_and_seeded_stratified_subsample(tmp_path):
    write_mnist(tmp_path, n_train=30, n_test=3)
    cfg = DatasetConfig(name="mnist", root=str(tmp_path), n_samples=12, seed=3)
    a, b = load_dataset(cfg, input_size=32), load_dataset(cfg, input_size=32)
    assert a.images.shape == (12, 1, 32, 32) and a.images.dtype == np.float32
    assert a.sample_ids.tolist() == b.sample_ids.tolist() and np.all(np.diff(a.sample_ids) > 0)
    assert np.bincount(a.labels).tolist() == [4, 4, 4]  # stratified over the three classes
    other = load_dataset(DatasetConfig(name="mnist", root=str(tmp_path), n_samples=12, seed=4), input_size=32)
    assert other.sample_ids.tolist() != a.sample_ids.tolist()


def test_missing_or_broken_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="dataset.root is required"):
        load_dataset(DatasetConfig(name="mnist"), 28)
    with pytest.raises(ConfigError, match="train-images-idx3-ubyte.*download=true"):
        load_dataset(DatasetConfig(name="mnist", root=str(tmp_path)), 28)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04" + bytes(16))
    with pytest.raises(ConfigError, match="not an IDX file"):
        read_idx(bad / "train-images-idx3-ubyte")
    write_idx(bad / "t.idx", np.zeros((2, 3), np.uint8))
    (bad / "t.idx").write_bytes((bad / "t.idx").read_bytes()[:-1])
    with pytest.raises(ConfigError, match="data bytes"):
        read_idx(bad / "t.idx")
    with pytest.raises(ConfigError, match="dataset.split='val' is not allowed"):
        load_dataset(DatasetConfig(name="mnist", root=str(tmp_path), split="val"), 28)


@pytest.mark.parametrize("layout", ["cifar-10-batches-py", "cifar-10-batches-bin"])
def test_cifar10_batches_load_in_batch_order(tmp_path, layout):
    write = write_cifar_py if layout.endswith("py") else write_cifar_bin
    batches = write(tmp_path / layout, n_per_batch=4)
    train = load_dataset(DatasetConfig(name="cifar10", root=str(tmp_path)), input_size=32)
    x = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    assert train.sample_ids.tolist() == list(range(20)) and train.images.shape == (20, 3, 32, 32)
    np.testing.assert_allclose(train.images, x / 255.0, atol=1e-7)  # R, G, B planes in that order
    assert train.labels.tolist() == np.concatenate([batches[f"data_batch_{i}"][1] for i in range(1, 6)]).tolist()
    test = load_dataset(DatasetConfig(name="cifar10", root=str(tmp_path), split="test"), input_size=32)
    assert test.labels.tolist() == batches["test_batch"][1].tolist()


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.getpid, ())


def test_cifar10_python_batch_that_names_code_is_refused(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    write_cifar_py(d, n_per_batch=2)
    (d / "data_batch_3").write_bytes(pickle.dumps({b"data": _RunsCode(), b"labels": [0]}))
    with pytest.raises(ConfigError, match=r"getpid is not allowed"):
        load_dataset(DatasetConfig(name="cifar10", root=str(tmp_path)), 32)


def test_cifar10_incomplete_split_names_the_missing_batches(tmp_path):
    d = tmp_path / "cifar-10-batches-bin"
    write_cifar_bin(d, n_per_batch=2)
    (d / "data_batch_4.bin").unlink()
    with pytest.raises(ConfigError, match="missing data_batch_4.bin"):
        load_dataset(DatasetConfig(name="cifar10", root=str(tmp_path)), 32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no CIFAR-10 batches"):
        load_dataset(DatasetConfig(name="cifar10", root=str(tmp_path / "empty")), 32)
    with pytest.raises(ConfigError, match="does not exist"):
        load_dataset(DatasetConfig(name="cifar10", root=str(tmp_path / "elsewhere")), 32)
