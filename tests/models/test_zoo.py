"""Architectures by name: built-ins, torchvision (channel adaptation), timm, any nn.Module by path."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from nnts_ray.config import ConfigError, ModelConfig
from nnts_ray.models import build_model
from nnts_ray.models.zoo import adapt_input_channels, pretrained_state

X = torch.randn(2, 1, 32, 32)


@pytest.mark.parametrize("arch", ["lenet5", "small_resnet", "torchvision:resnet18", "torchvision:mobilenet_v3_small"])
def test_every_zoo_architecture_takes_grey_32x32_and_gives_class_logits(arch):
    model = build_model(ModelConfig(arch=arch), in_channels=1, num_classes=10).eval()
    with torch.inference_mode():
        assert model(X).shape == (2, 10)


def test_torchvision_stem_is_replaced_for_one_channel_and_kept_for_three():
    grey = build_model(ModelConfig(arch="torchvision:resnet18"), 1, 7)
    rgb = build_model(ModelConfig(arch="torchvision:resnet18"), 3, 7)
    assert grey.conv1.in_channels == 1 and rgb.conv1.in_channels == 3 and grey.fc.out_features == 7
    assert grey.conv1.kernel_size == rgb.conv1.kernel_size and grey.conv1.stride == rgb.conv1.stride


def test_random_init_is_seeded_by_train_seed():
    a = build_model(ModelConfig(arch="small_resnet"), 1, 10).state_dict()
    b = build_model(ModelConfig(arch="small_resnet"), 1, 10).state_dict()
    cfg = ModelConfig(arch="small_resnet")
    cfg.train.seed = 1
    c = build_model(cfg, 1, 10).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a) and not torch.equal(a["fc.weight"], c["fc.weight"])


def test_unknown_architectures_name_the_choices():
    with pytest.raises(ConfigError, match="model.arch='vgg' is not allowed; choose one of: lenet5, small_resnet"):
        build_model(ModelConfig(arch="vgg"), 1, 10)
    with pytest.raises(ConfigError, match="not a torchvision classification model; close names: .*resnet18"):
        build_model(ModelConfig(arch="torchvision:resnet81"), 1, 10)


def test_target_builds_any_module_by_import_path_passing_channels_and_classes():
    cfg = ModelConfig(arch="target", target="tests.models.tiny.TinyNet", kwargs={"hidden": 3})
    model = build_model(cfg, in_channels=2, num_classes=5)
    assert model.conv.in_channels == 2 and model.conv.out_channels == 3 and model.fc.out_features == 5
    seq = build_model(ModelConfig(arch="target", target="torch.nn.Identity"), 1, 10)
    assert isinstance(seq, nn.Identity)


@pytest.mark.parametrize("target, message", [
    (None, "give an import path"),
    ("tests.models.nowhere.Net", "cannot be imported"),
    ("tests.models.tiny.not_a_module", "is not an nn.Module: give a torch.nn.Module subclass"),
    ("tests.models.tiny.lies_about_module", "returned a dict, not a torch nn.Module"),
])
def test_target_errors(target, message):
    with pytest.raises(ConfigError, match=message):
        build_model(ModelConfig(arch="target", target=target), 1, 10)
    with pytest.raises(ConfigError, match="does not accept"):
        build_model(ModelConfig(arch="target", target="tests.models.tiny.TinyNet", kwargs={"depth": 3}), 1, 10)


def test_timm_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError
    with pytest.raises(ConfigError, match=r"needs timm.*pip install 'nnts-ray\[timm\]'"):
        build_model(ModelConfig(arch="timm:resnet18"), 1, 10)


def test_timm_model_by_name_when_installed():
    pytest.importorskip("timm")
    model = build_model(ModelConfig(arch="timm:resnet18"), 1, 10).eval()
    with torch.inference_mode():
        assert model(X).shape == (2, 10)


def test_pretrained_first_conv_is_summed_over_rgb_so_grey_equals_repeated_grey():
    rgb = build_model(ModelConfig(arch="torchvision:resnet18"), 3, 10).eval()
    grey = build_model(ModelConfig(arch="torchvision:resnet18"), 1, 10).eval()
    grey.load_state_dict(adapt_input_channels(rgb.state_dict(), grey))
    with torch.inference_mode():
        torch.testing.assert_close(grey(X), rgb(X.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-5)


def test_unknown_pretrained_weights_name_is_refused_before_any_download():
    cfg = ModelConfig(arch="torchvision:resnet18", kwargs={"weights": "IMAGENET9K"})
    model = build_model(cfg, 1, 10)
    assert model.fc.out_features == 1000  # pretrained weights keep the library's head
    with pytest.raises(ConfigError, match="not a weights name of torchvision:resnet18; choose one of: DEFAULT, IMAGENET1K_V1"):
        pretrained_state(cfg, model)
    with pytest.raises(ConfigError, match="has no library weights"):
        pretrained_state(ModelConfig(arch="small_resnet", kwargs={"pretrained": True}), model)
