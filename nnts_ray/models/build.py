"""Build a model from its config and make it ready: checkpoint, pretrained, cached training, or as is.

Where the weights come from, in order: `model.checkpoint` (a local state_dict, loaded with
weights_only=True), library weights asked for explicitly (`model.kwargs.weights` / `.pretrained`),
training on the spot (`model.train.enabled`, needs labels), else the seeded random initialisation.

Training on the spot is cached under `paths.cache_dir`, keyed by the training trajectory (architecture,
training settings except the epoch count, and the content of the images and labels). The cache keeps
the weights *and* the optimiser / random-generator state after each requested epoch count, so a model
asked for at 8 epochs continues from a cached 4-epoch state of the same trajectory and ends with exactly
the weights a fresh 8-epoch run gives. That is what makes a training-dynamics sweep (the same network at
epochs 0, 1, 2, 4, 8) cost one training run.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nnts_ray.config import ConfigError, ModelConfig
from nnts_ray.io import atomic_path, write_json
from nnts_ray.models import zoo
from nnts_ray.plan import ModelPlan
from nnts_ray.progress import Progress


def build_model(cfg: ModelConfig, in_channels: int, num_classes: int) -> nn.Module:
    """An untrained module for `cfg.arch` (seeded, so random-initialised models are reproducible)."""
    torch.manual_seed(cfg.train.seed)
    return zoo.build(cfg, in_channels, num_classes)


def load_state(path: str | Path, what: str) -> dict:
    """A state_dict from a local file without unpickling code (weights_only=True)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what}={str(path)!r} does not exist; give a local state_dict file")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ConfigError(f"{what}={str(path)!r} was refused: it is not a plain state_dict (loading it would run "
                          f"pickled code). Save model.state_dict() instead. ({str(e).splitlines()[0]})") from e
    except Exception as e:  # noqa: BLE001 — empty, truncated or foreign files fail in many ways
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"{what}={str(path)!r} is not a readable torch state_dict file ({first}); "
                          f"save it with torch.save(model.state_dict(), path)") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError(f"{what}={str(path)!r} holds a {type(state).__name__}, not a state_dict")
    return state


def load_weights(model: nn.Module, state: dict, what: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ConfigError(f"{what} does not fit the architecture: {str(e).splitlines()[0]} "
                          f"{' '.join(str(e).split()[1:40])}") from e


def train(model: nn.Module, images: np.ndarray, labels: np.ndarray, cfg: ModelConfig,
          resume: dict | None = None) -> tuple[dict, dict]:
    """Seeded minibatch Adam on the analysis set itself (as the paper analyses its training data),
    from epoch 0 or from a `resume` state of the same trajectory. Returns (info, resume state)."""
    torch.manual_seed(cfg.train.seed)
    gen = torch.Generator().manual_seed(cfg.train.seed)
    x, y = torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    start = 0
    if resume is not None:
        opt.load_state_dict(resume["optimizer"])
        gen.set_state(resume["generator"])
        torch.set_rng_state(resume["rng"])
        start = int(resume["epoch"])
    model.train()
    t0 = time.perf_counter()
    per_epoch = -(-len(x) // cfg.train.batch_size)
    with Progress(f"training {cfg.name}", (cfg.train.epochs - start) * per_epoch, "batches") as progress:
        for epoch in range(start, cfg.train.epochs):
            loss_sum = correct = seen = 0.0
            for idx in torch.randperm(len(x), generator=gen).split(cfg.train.batch_size):
                opt.zero_grad()
                logits = model(x[idx])
                loss = nn.functional.cross_entropy(logits, y[idx])
                loss.backward()
                opt.step()
                loss_sum += loss.item() * len(idx)
                correct += (logits.argmax(1) == y[idx]).sum().item()
                seen += len(idx)
                progress.advance(1, f"epoch {epoch + 1}/{cfg.train.epochs}, loss {loss_sum / seen:.4f}, "
                                    f"accuracy {correct / seen:.3f}")
    state = {"optimizer": opt.state_dict(), "generator": gen.get_state(), "rng": torch.get_rng_state(),
             "epoch": cfg.train.epochs}
    model.eval()
    with torch.inference_mode():
        acc = float((model(x).argmax(1) == y).float().mean())
    return {"optimizer": f"Adam(lr={cfg.train.lr}), cross-entropy, minibatch {cfg.train.batch_size}, shuffled each epoch",
            "epochs": cfg.train.epochs, "resumed_from_epoch": start, "train_accuracy": acc,
            "seconds": time.perf_counter() - t0}, state


class TrainingCache:
    """Cached points of one training trajectory: `<arch>-<key>-e<epochs>.pt` (weights),
    `.resume.pt` (optimiser and generator state), `.json` (training record)."""

    def __init__(self, cache_dir: str, cfg: ModelConfig, in_channels: int, num_classes: int, data_digest: str):
        trajectory = {**asdict(cfg.train), "epochs": None}
        blob = json.dumps([trajectory, cfg.arch, cfg.target, cfg.kwargs, in_channels, num_classes, data_digest],
                          sort_keys=True, default=str)
        key = hashlib.sha256(blob.encode()).hexdigest()[:16]
        self.stem = Path(cache_dir) / f"{cfg.arch.replace(':', '_')}-{key}"

    def weights(self, epochs: int) -> Path:
        return Path(f"{self.stem}-e{epochs}.pt")

    def resume(self, epochs: int) -> Path:
        return Path(f"{self.stem}-e{epochs}.resume.pt")

    def info(self, epochs: int) -> Path:
        return Path(f"{self.stem}-e{epochs}.json")

    def latest_before(self, epochs: int) -> int | None:
        """The largest cached epoch count < epochs with a resumable state."""
        done = [int(p.name[len(self.stem.name) + 2:-len(".resume.pt")])
                for p in self.stem.parent.glob(f"{self.stem.name}-e*.resume.pt")]
        done = [e for e in done if e < epochs]
        return max(done) if done else None

    def save(self, model: nn.Module, state: dict, info: dict) -> None:
        """Weights first: a resumable state is only ever found next to its weights."""
        e = info["epochs"]
        with atomic_path(self.weights(e)) as tmp:
            torch.save(model.state_dict(), tmp)
        with atomic_path(self.resume(e)) as tmp:
            torch.save(state, tmp)
        write_json(info, self.info(e))


def _trained(model: nn.Module, cfg: ModelConfig, images: np.ndarray, labels: np.ndarray,
             cache: TrainingCache) -> dict:
    epochs = cfg.train.epochs
    if cache.weights(epochs).is_file():
        model.load_state_dict(load_state(cache.weights(epochs), "training cache"))
        info = json.loads(cache.info(epochs).read_text()) if cache.info(epochs).is_file() else {}
        return {**info, "source": "trained_cached", "cache": str(cache.weights(epochs))}
    resume = None
    start = cache.latest_before(epochs)
    if start is not None:
        model.load_state_dict(load_state(cache.weights(start), "training cache"))
        resume = torch.load(cache.resume(start), map_location="cpu", weights_only=True)
    info, state = train(model, images, labels, cfg, resume)
    cache.save(model, state, info)
    return {**info, "source": "trained", "cache": str(cache.weights(epochs))}


def prepare_model(mp: ModelPlan, images: np.ndarray, labels: np.ndarray | None, data_digest: str,
                  cache_dir: str) -> tuple[nn.Module, dict]:
    """The model in eval mode plus a record of where its weights came from (`source`)."""
    cfg = mp.config
    model = build_model(cfg, mp.in_channels, mp.num_classes)
    if cfg.checkpoint:
        load_weights(model, load_state(cfg.checkpoint, "model.checkpoint"), f"model.checkpoint={cfg.checkpoint!r}")
        return model.eval(), {"source": "checkpoint", "checkpoint": cfg.checkpoint}
    if zoo.wants_pretrained(cfg):
        load_weights(model, zoo.pretrained_state(cfg, model), f"pretrained weights of {cfg.arch}")
        return model.eval(), {"source": "pretrained", "library_weights": {k: cfg.kwargs[k] for k in zoo.PRETRAINED_KEYS
                                                                         if k in cfg.kwargs}}
    if not (cfg.train.enabled and labels is not None):
        return model.eval(), {"source": "random_init", "seed": cfg.train.seed}
    cache = TrainingCache(cache_dir, cfg, mp.in_channels, mp.num_classes, data_digest)
    return model.eval(), _trained(model, cfg, np.asarray(images, dtype=np.float32), labels, cache)
