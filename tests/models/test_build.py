"""Where weights come from: safe checkpoints, explicit pretrained weights, cached training trajectories."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnts_ray import digest
from nnts_ray.config import ConfigError, ModelConfig, TrainConfig
from nnts_ray.models import build_model, zoo
from nnts_ray.models.build import prepare_model
from nnts_ray.plan import ModelPlan

RNG = np.random.default_rng(0)
IMAGES = RNG.random((48, 1, 32, 32), dtype=np.float32)
LABELS = np.arange(48, dtype=np.int64) % 3


def _lenet(epochs: int) -> ModelConfig:
    return ModelConfig(arch="lenet5", train=TrainConfig(epochs=epochs, batch_size=16))


def _prepare(cfg: ModelConfig, images: np.ndarray, labels: np.ndarray | None, cache: str):
    """prepare_model for a 1-channel, 3-class plan of `cfg`, the cache keyed by the data's content."""
    return prepare_model(ModelPlan(cfg, 1, 3, ()), images, labels, digest.arrays(images, labels), cache)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_checkpoint_is_loaded_with_weights_only_and_pickled_code_is_refused(tmp_path):
    cfg = ModelConfig(arch="small_resnet")
    source = build_model(cfg, 1, 3)
    torch.nn.init.constant_(source.fc.bias, 0.5)
    torch.save({"state_dict": source.state_dict()}, tmp_path / "ok.pt")
    cfg.checkpoint = str(tmp_path / "ok.pt")
    model, info = _prepare(cfg, IMAGES, LABELS, str(tmp_path / "cache"))
    assert _same(model, source) and info == {"source": "checkpoint", "checkpoint": cfg.checkpoint}

    torch.save(source, tmp_path / "module.pt")  # a whole pickled module, not a state_dict
    cfg.checkpoint = str(tmp_path / "module.pt")
    with pytest.raises(ConfigError, match="was refused: it is not a plain state_dict"):
        _prepare(cfg, IMAGES, LABELS, str(tmp_path / "cache"))
    cfg.checkpoint = str(tmp_path / "missing.pt")
    with pytest.raises(ConfigError, match="does not exist"):
        _prepare(cfg, IMAGES, LABELS, str(tmp_path / "cache"))
    torch.save(build_model(_lenet(1), 1, 3).state_dict(), tmp_path / "lenet.pt")
    cfg.checkpoint = str(tmp_path / "lenet.pt")
    with pytest.raises(ConfigError, match="does not fit the architecture"):
        _prepare(cfg, IMAGES, LABELS, str(tmp_path / "cache"))


def test_pretrained_weights_only_when_asked_and_adapted_to_grey(tmp_path, monkeypatch):
    rgb = build_model(ModelConfig(arch="torchvision:resnet18"), 3, 1000)
    fetched = []

    def fake_fetch(cfg, model):  # stands in for the download, which tests never do
        fetched.append(cfg.kwargs)
        return zoo.adapt_input_channels(rgb.state_dict(), model)

    monkeypatch.setattr(zoo, "pretrained_state", fake_fetch)
    plain = ModelConfig(arch="torchvision:resnet18", train=TrainConfig(enabled=False))
    _, info = _prepare(plain, IMAGES, LABELS, str(tmp_path))
    assert info["source"] == "random_init" and not fetched
    asked = ModelConfig(arch="torchvision:resnet18", kwargs={"weights": "DEFAULT"})
    model, info = _prepare(asked, IMAGES, LABELS, str(tmp_path))
    assert fetched == [{"weights": "DEFAULT"}] and info["source"] == "pretrained"
    assert torch.equal(model.conv1.weight, rgb.conv1.weight.sum(1, keepdim=True))
    assert torch.equal(model.fc.weight, rgb.fc.weight)  # the library's head is kept


def test_no_labels_or_training_off_means_seeded_random_init(tmp_path):
    a, info = _prepare(_lenet(1), IMAGES, None, str(tmp_path))
    b, _ = _prepare(ModelConfig(arch="lenet5", train=TrainConfig(enabled=False)), IMAGES, LABELS, str(tmp_path))
    assert info == {"source": "random_init", "seed": 0} and torch.equal(a.C0.weight, b.C0.weight)
    assert not any(tmp_path.iterdir())


def test_training_resumes_a_cached_trajectory_exactly(tmp_path):
    """Epoch 2 reached through a cached epoch 1 equals epoch 2 trained from scratch, bit for bit."""
    fresh, info = _prepare(_lenet(2), IMAGES, LABELS, str(tmp_path / "a"))
    assert info["source"] == "trained" and info["resumed_from_epoch"] == 0
    one, _ = _prepare(_lenet(1), IMAGES, LABELS, str(tmp_path / "b"))
    two, info = _prepare(_lenet(2), IMAGES, LABELS, str(tmp_path / "b"))
    assert info["resumed_from_epoch"] == 1 and _same(two, fresh) and not _same(one, two)
    again, info = _prepare(_lenet(2), IMAGES, LABELS, str(tmp_path / "b"))
    assert info["source"] == "trained_cached" and _same(again, fresh)
    zero, info = _prepare(_lenet(0), IMAGES, LABELS, str(tmp_path / "b"))
    assert _same(zero, build_model(_lenet(0), 1, 3)) and info["epochs"] == 0


def test_training_cache_is_keyed_by_the_data_content(tmp_path):
    a, _ = _prepare(_lenet(1), IMAGES, LABELS, str(tmp_path))
    b, info = _prepare(_lenet(1), IMAGES[::-1].copy(), LABELS, str(tmp_path))
    assert info["source"] == "trained" and not _same(a, b)
