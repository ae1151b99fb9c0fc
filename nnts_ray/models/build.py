"""Build a model from its config and make it ready: checkpoint, cached training, or as is."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nnts_ray.config import ConfigError, ModelConfig
from nnts_ray.io import atomic_path


def build_model(cfg: ModelConfig, in_channels: int, num_classes: int) -> nn.Module:
    """An untrained module for `cfg.arch` (seeded, so random-initialised models are reproducible)."""
    torch.manual_seed(cfg.train.seed)
    if cfg.arch == "lenet5":
        from nnts_ray.models.lenet import LeNet5

        return LeNet5(in_channels=in_channels, num_classes=num_classes, **cfg.kwargs)
    from nnts_ray.models import zoo

    return zoo.build(cfg, in_channels, num_classes)


def load_checkpoint(model: nn.Module, path: str) -> None:
    """A local state_dict, loaded without unpickling code (weights_only=True)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"model.checkpoint={path!r} does not exist; give a local state_dict file")
    state = torch.load(p, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    model.load_state_dict(state)


def train(model: nn.Module, images: np.ndarray, labels: np.ndarray, cfg: ModelConfig) -> dict:
    """Seeded minibatch Adam on the analysis set itself (as the paper analyses its training data)."""
    torch.manual_seed(cfg.train.seed)
    gen = torch.Generator().manual_seed(cfg.train.seed)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    model.train()
    t0 = time.perf_counter()
    for _ in range(cfg.train.epochs):
        for idx in torch.randperm(len(x), generator=gen).split(cfg.train.batch_size):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    model.eval()
    with torch.inference_mode():
        acc = float((model(x).argmax(1) == y).float().mean())
    return {"epochs": cfg.train.epochs, "train_accuracy": acc, "seconds": time.perf_counter() - t0}


def prepare_model(cfg: ModelConfig, images: np.ndarray, labels: np.ndarray | None, data_key: str,
                  cache_dir: str) -> tuple[nn.Module, dict]:
    """The model in eval mode plus a record of where its weights came from.

    Built-in models without a checkpoint are trained on the spot once and cached under `cache_dir`,
    keyed by the model config and the data's identity, so a re-run reuses the same weights.
    """
    in_channels = cfg.in_channels or images.shape[1]
    num_classes = int(labels.max()) + 1 if labels is not None else 10
    model = build_model(cfg, in_channels, num_classes)
    if cfg.checkpoint:
        load_checkpoint(model, cfg.checkpoint)
        return model.eval(), {"weights": "checkpoint", "checkpoint": cfg.checkpoint}
    if not (cfg.train.enabled and labels is not None):
        return model.eval(), {"weights": "random_init", "seed": cfg.train.seed}
    key = hashlib.sha256(json.dumps([asdict(cfg.train), cfg.arch, cfg.kwargs, in_channels, num_classes, data_key],
                                    sort_keys=True).encode()).hexdigest()[:16]
    cached = Path(cache_dir) / f"{cfg.arch}-{key}.pt"
    if cached.is_file():
        model.load_state_dict(torch.load(cached, map_location="cpu", weights_only=True))
        info = json.loads(cached.with_suffix(".json").read_text()) if cached.with_suffix(".json").is_file() else {}
        return model.eval(), {"weights": "trained_cached", "cache": str(cached), **info}
    info = train(model, images, labels, cfg)
    with atomic_path(cached) as tmp:
        torch.save(model.state_dict(), tmp)
    cached.with_suffix(".json").write_text(json.dumps(info))
    return model.eval(), {"weights": "trained", "cache": str(cached), **info}
