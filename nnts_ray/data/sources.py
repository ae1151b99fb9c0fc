"""Loaders for each dataset source. Each returns a SampleSet with stable sample ids."""

from __future__ import annotations

import numpy as np

from nnts_ray.config import DatasetConfig, SyntheticConfig
from nnts_ray.data.base import SampleSet, register, resize


@register("digits")
def digits(cfg: DatasetConfig, size: int) -> SampleSet:
    """scikit-learn's bundled 8×8 handwritten digits (1,797 images, no download); id = bundled index."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images.astype(np.float32) / 16.0)[:, None]  # (n, 1, 8, 8) in [0, 1]
    return SampleSet(np.arange(len(images), dtype=np.int64), d.target.astype(np.int64), resize(images, size))


@register("synthetic")
def synthetic(cfg: DatasetConfig, size: int) -> SampleSet:
    """Seeded images on a low-dimensional manifold: n_classes clusters in an intrinsic_dim latent
    space, pushed through a fixed random smooth map to 1 × size × size pixels."""
    s = cfg.synthetic or SyntheticConfig()
    rng = np.random.default_rng(cfg.seed)
    labels = rng.integers(0, s.n_classes, size=s.n).astype(np.int64)
    centres = rng.normal(0, 2.0, size=(s.n_classes, s.intrinsic_dim))
    z = centres[labels] + rng.normal(0, 1.0, size=(s.n, s.intrinsic_dim))  # (n, m)
    w = rng.normal(0, 1.0 / np.sqrt(s.intrinsic_dim), size=(s.intrinsic_dim, size * size))
    images = np.tanh(z @ w).astype(np.float32).reshape(s.n, 1, size, size)
    return SampleSet(np.arange(s.n, dtype=np.int64), labels, images)
