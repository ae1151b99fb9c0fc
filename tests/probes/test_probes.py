"""Probe points: names and order in both modes, outputs that cannot be probed, in-place safety, reductions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from nnts_ray.config import ConfigError, ModelConfig
from nnts_ray.models.lenet import LeNet5
from nnts_ray.probes import Extractor, Reducer, candidates, probe_points
from tests.models.tiny import Branchy, TinyNet, WithTuple

PAPER_PROBES = ["input", "C0", "R0", "P0", "C1", "R1", "P1", "C2", "R2", "M3", "R3", "O"]
X1 = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def resnet18():
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10).eval()


def test_lenet_keeps_the_papers_twelve_probe_points_and_outputs():
    model = LeNet5().eval()
    points = probe_points(model, ModelConfig(), X1, seed=0)
    assert [p.layer for p in points] == PAPER_PROBES
    assert [p.dim for p in points] == [1024, 4704, 4704, 1176, 1600, 1600, 400, 120, 120, 84, 84, 10]
    out = Extractor(model, PAPER_PROBES, "atomic")(X1)
    with torch.inference_mode():
        assert torch.equal(out["O"], model(X1)) and torch.equal(out["input"], X1)


def test_atomic_input_is_called_input_and_inplace_relu_does_not_overwrite_earlier_points(resnet18):
    x = torch.randn(2, 3, 32, 32)
    names = [c.name for c in candidates(resnet18, "atomic", x)]
    assert names[:5] == ["input", "conv1", "bn1", "relu", "maxpool"] and "x" not in names
    assert "layer1.0.relu_1" in names and "flatten" not in names  # repeated module call; view skipped
    out = Extractor(resnet18, ["bn1", "relu", "layer1.0.bn2", "layer1.0.add"], "atomic")(x)
    assert (out["bn1"] < 0).any(), "bn1 was overwritten by the in-place ReLU that follows it"
    assert torch.equal(out["relu"], out["bn1"].clamp(min=0))
    assert not torch.equal(out["layer1.0.bn2"], out["layer1.0.add"])


def test_modules_mode_lists_containers_in_completion_order_and_repeated_calls(resnet18):
    x = torch.randn(2, 3, 32, 32)
    names = [c.name for c in candidates(resnet18, "modules", x)]
    assert names.index("layer1.0.conv1") < names.index("layer1.0.relu_1") < names.index("layer1.0") < names.index("layer1")
    assert names[-1] == "fc"
    out = Extractor(resnet18, ["input", "bn1", "layer1.0.relu", "layer1.0.relu_1", "layer1", "layer1.1"], "modules")(x)
    assert (out["bn1"] < 0).any() and torch.equal(out["input"], x)
    assert torch.equal(out["layer1"], out["layer1.1"]) and not torch.equal(out["layer1.0.relu"], out["layer1.0.relu_1"])
    with torch.inference_mode():
        assert torch.equal(Extractor(resnet18, ["fc"], "modules")(x)["fc"], resnet18(x))


@pytest.mark.parametrize("mode", ["atomic", "modules"])
def test_tuple_outputs_are_skipped_by_globs_and_refused_by_name(mode):
    model, x = WithTuple().eval(), torch.randn(2, 1, 4, 4)
    cfg = ModelConfig(probe_mode=mode, probes=["*"])
    names = [p.layer for p in probe_points(model, cfg, x, 0)]
    assert "rnn" not in names and names[0] == "input" and names[-1] == "act_1"
    with pytest.raises(ConfigError, match="'rnn' cannot be probed: rnn returns a tuple"):
        probe_points(model, ModelConfig(probe_mode=mode, probes=["input", "rnn"]), x, 0)
    if mode == "atomic":  # a tuple's elements are probe points of their own
        assert "getitem_1" in names and "max" not in names


def test_unknown_probe_and_untraceable_model_get_clear_messages():
    with pytest.raises(ConfigError, match=r"probe point 'C9' does not exist; valid probe points: input, C0"):
        probe_points(LeNet5(), ModelConfig(probes=["input", "C9"]), X1, 0)
    with pytest.raises(ConfigError, match="does not trace with torch.fx.*probe_mode=modules"):
        probe_points(Branchy(), ModelConfig(), torch.randn(2, 1, 4, 4), 0)
    points = probe_points(Branchy(), ModelConfig(probe_mode="modules"), torch.randn(2, 1, 4, 4), 0)
    assert [p.layer for p in points] == ["input", "lin"]
    with pytest.raises(ConfigError, match="fails on inputs of shape"):
        probe_points(LeNet5(), ModelConfig(), torch.randn(2, 1, 20, 20), 0)


def test_selection_by_names_and_globs_keeps_forward_order():
    cfg = ModelConfig(probes=["O", "C*", "input"])
    assert [p.layer for p in probe_points(LeNet5(), cfg, X1, 0)] == ["input", "C0", "C1", "C2", "O"]
    assert [p.position for p in probe_points(LeNet5(), cfg, X1, 0)] == [0, 1, 2, 3, 4]


def test_reductions_dims_and_seeded_projection():
    t = torch.randn(5, 6, 4, 4)
    flat = Reducer(ModelConfig(reduction="flatten"), "C0", (6, 4, 4), 0)
    pool = Reducer(ModelConfig(reduction="avgpool"), "C0", (6, 4, 4), 0)
    proj = Reducer(ModelConfig(reduction="random_projection", projection_dim=8), "C0", (6, 4, 4), 0)
    assert (flat.dim, pool.dim, proj.dim) == (96, 6, 8)
    assert torch.equal(flat(t), t.flatten(1))
    assert torch.allclose(pool(t), t.mean(dim=(2, 3)))
    again = Reducer(ModelConfig(reduction="random_projection", projection_dim=8), "C0", (6, 4, 4), 0)
    assert torch.equal(proj(t), again(t)) and proj(t).shape == (5, 8)
    other_seed = Reducer(ModelConfig(reduction="random_projection", projection_dim=8), "C0", (6, 4, 4), 1)
    assert not torch.equal(proj(t), other_seed(t))
    small = Reducer(ModelConfig(reduction="random_projection", projection_dim=256), "O", (10,), 0)
    assert small.dim == 10 and small.matrix is None  # never projected up
    assert Reducer(ModelConfig(reduction="avgpool"), "O", (10,), 0).dim == 10


def test_inplace_module_in_a_small_custom_net_is_recorded_before_it_runs():
    model = TinyNet().eval()
    x = torch.randn(2, 1, 8, 8)
    for mode in ("atomic", "modules"):
        out = Extractor(model, ["conv", "relu"], mode)(x)
        assert (out["conv"] < 0).any() and torch.equal(out["relu"], out["conv"].clamp(min=0))
    assert np.prod(probe_points(model, ModelConfig(), x, 0)[1].shape) == 4 * 8 * 8
