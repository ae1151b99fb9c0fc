"""How a probe point's output becomes one row per sample (recorded per probe point in the manifest)."""

from __future__ import annotations

import numpy as np
import torch

from nnts_ray.config import ModelConfig


class Reducer:
    """Turns a probe point's (batch, …) output into (batch, d) float32 rows.

    flatten: the paper. avgpool: mean over spatial positions of (C, H, W) outputs — neighbours by
    channel content, blind to where it occurs. random_projection: a seeded Gaussian map to
    projection_dim (Johnson–Lindenstrauss: distances preserved approximately, so NNTS is approximate).
    """

    def __init__(self, cfg: ModelConfig, layer: str, shape: tuple[int, ...], seed: int):
        self.kind = cfg.reduction
        flat = int(np.prod(shape))
        self.matrix = None
        if self.kind == "avgpool":
            self.dim = shape[0] if len(shape) >= 2 else flat
        elif self.kind == "random_projection" and flat > cfg.projection_dim:
            g = torch.Generator().manual_seed(seed + sum(map(ord, layer)))
            self.matrix = torch.randn(flat, cfg.projection_dim, generator=g) / np.sqrt(cfg.projection_dim)
            self.dim = cfg.projection_dim
        else:
            self.dim = flat

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        t = t.float()
        if self.kind == "avgpool" and t.dim() >= 3:
            return t.flatten(2).mean(2)
        t = t.flatten(1)
        if self.matrix is not None:
            self.matrix = self.matrix.to(t.device)
            return t @ self.matrix
        return t
