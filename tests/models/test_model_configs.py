"""Every shipped model config (conf/model, and the models of every experiment) builds offline and its
probe selection is valid; nnts-ray-layers lists probe points with their shapes."""

from __future__ import annotations

import sys

import pytest
import torch

from nnts_ray.cli import CONF_DIR, layers_main, load_config
from nnts_ray.models import build_model
from nnts_ray.probes import probe_points


def _shipped_models():
    for path in sorted((CONF_DIR / "model").glob("*.yaml")):
        yield from load_config([f"model={path.stem}"]).models
    for path in sorted((CONF_DIR / "experiment").glob("*.yaml")):
        models = load_config([f"experiment={path.stem}"]).models
        if len(models) > 1:
            yield from models


@pytest.mark.parametrize("mc", list(_shipped_models()), ids=lambda mc: mc.name)
def test_shipped_model_builds_and_selects_probe_points(mc):
    model = build_model(mc, 1, 10).eval()
    points = probe_points(model, mc, torch.zeros(2, 1, mc.input_size, mc.input_size), seed=0)
    assert points[0].layer == "input" and len(points) >= 5
    assert all(p.dim > 0 for p in points)


def test_zoo_experiment_has_four_architectures_two_built_in_two_torchvision():
    archs = [m.arch for m in load_config(["experiment=zoo_digits"]).models]
    assert len(set(archs)) == 4 and sum(a.startswith("torchvision:") for a in archs) == 2
    assert {"lenet5", "small_resnet"} <= set(archs)


def test_training_dynamics_is_one_network_at_increasing_epochs():
    models = load_config(["experiment=training_dynamics"]).models
    assert {m.arch for m in models} == {"lenet5"}
    epochs = [m.train.epochs for m in models]
    assert epochs == sorted(epochs) and epochs[0] == 0 and len(set(epochs)) == len(epochs)


def test_layers_command_lists_resnet18_probe_points_with_shapes(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["nnts-ray-layers", "model=resnet18"])
    layers_main()
    out = capsys.readouterr().out
    assert "model resnet18 (torchvision:resnet18, probe_mode=modules, reduction=flatten): 8 probe points" in out
    assert "layer4" in out and "512x1x1" in out and "dim=10" in out
