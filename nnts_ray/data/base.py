"""The `SampleSet` every loader returns, and the dispatch from `DatasetConfig` to a loader."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from nnts_ray.config import ConfigError, DatasetConfig


@dataclass
class SampleSet:
    """n samples in ascending `sample_id` order; images are what the model receives."""

    sample_ids: np.ndarray  # (n,) int64, unique, ascending, stable across runs
    labels: np.ndarray | None  # (n,) int64
    images: np.ndarray  # (n, C, H, W) float32 in model units, or uint8 0..255 straight from a file
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. split, path

    def __post_init__(self) -> None:
        order = np.argsort(self.sample_ids, kind="stable")
        if not np.array_equal(order, np.arange(len(order))):
            self.sample_ids = self.sample_ids[order]
            self.images = self.images[order]
            self.labels = None if self.labels is None else self.labels[order]
            self.extra = {k: v[order] for k, v in self.extra.items()}
        repeated = self.sample_ids[1:][self.sample_ids[1:] == self.sample_ids[:-1]]  # ids are sorted now
        if len(repeated):
            raise ConfigError(f"sample_id {int(repeated[0])} appears more than once ({len(repeated)} repeats in all); "
                              "every sample needs its own id")
        if self.labels is not None and len(self.labels) and self.labels.min() < 0:
            bad = int(np.argmin(self.labels))
            raise ConfigError(f"label {int(self.labels[bad])} of sample_id {int(self.sample_ids[bad])} is negative; "
                              "labels must be class indices 0, 1, 2, …")
        if self.images.dtype.kind == "f":  # decided here, before any training or search sees the data
            bad = ~np.isfinite(self.images.reshape(len(self.images), -1)).all(axis=1)
            if bad.any():
                raise ConfigError(f"{int(bad.sum())} samples hold non-finite pixel values, NaN or infinite (first: sample_id "
                                  f"{int(self.sample_ids[np.argmax(bad)])}); every input value must be finite")

    def __len__(self) -> int:
        return len(self.sample_ids)

    def subset(self, rows: np.ndarray) -> "SampleSet":
        rows = np.sort(rows)
        return SampleSet(
            self.sample_ids[rows], None if self.labels is None else self.labels[rows], self.images[rows],
            {k: v[rows] for k, v in self.extra.items()},
        )

    def table(self, thumbnails: bool = True) -> pa.Table:
        """samples.parquet: sample_id, label, extra columns, and a small PNG per sample for viewers."""
        cols = {
            "sample_id": pa.array(self.sample_ids, pa.int64()),
            "label": pa.array(None if self.labels is None else self.labels, pa.int64())
            if self.labels is not None else pa.nulls(len(self), pa.int64()),
        }
        for k, v in self.extra.items():
            cols[k] = pa.array(v)
        if thumbnails:
            cols["thumbnail"] = pa.array([_png(img) for img in self.images], pa.binary())
        return pa.table(cols)


def _png(img: np.ndarray, side: int = 64) -> bytes:
    """A grey or RGB thumbnail of one (C, H, W) image, min-max scaled."""
    from PIL import Image

    a = np.asarray(img, dtype=np.float32)
    a = (a - a.min()) / (a.max() - a.min() + 1e-12) * 255
    a = a[0] if a.shape[0] == 1 else np.moveaxis(a[:3], 0, -1)
    im = Image.fromarray(a.astype(np.uint8)).resize((side, side), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """(n, C, H, W) images as float32 (uint8 scaled to [0, 1]), bilinear-resized to size × size."""
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    if images.shape[-2:] == (size, size):
        return images.astype(np.float32, copy=False)
    import torch
    import torch.nn.functional as F

    with torch.inference_mode():
        out = F.interpolate(torch.from_numpy(np.ascontiguousarray(images, np.float32)), size=(size, size),
                            mode="bilinear", align_corners=False)
    return out.numpy()


def subsample(ss: SampleSet, cfg: DatasetConfig) -> SampleSet:
    """Seeded subsample of n_samples, stratified by label when asked and labels exist."""
    if cfg.n_samples is None or cfg.n_samples >= len(ss):
        return ss
    if cfg.n_samples < 2:
        raise ConfigError(f"dataset.n_samples={cfg.n_samples} is not allowed; need at least 2 samples")
    rng = np.random.default_rng(cfg.seed)
    if cfg.stratified and ss.labels is not None:
        from sklearn.model_selection import train_test_split

        rows, _ = train_test_split(np.arange(len(ss)), train_size=cfg.n_samples, random_state=cfg.seed,
                                   stratify=ss.labels)
    else:
        rows = rng.choice(len(ss), size=cfg.n_samples, replace=False)
    return ss.subset(np.asarray(rows))


LOADERS: dict[str, Callable[[DatasetConfig, int], SampleSet]] = {}


def register(name: str):
    def deco(fn):
        LOADERS[name] = fn
        return fn

    return deco


def load_dataset(cfg: DatasetConfig, input_size: int) -> SampleSet:
    """Load, subsample, then resize to dataset.image_size (or the model's input size) as float32.

    Subsampling comes first: a 500-image subset of CIFAR-10 never converts all 50,000 images to float."""
    from nnts_ray.data import images, sources, standard  # noqa: F401  (register the loaders)

    if cfg.name not in LOADERS:
        raise ConfigError(f"dataset.name={cfg.name!r} is not allowed; choose one of: {', '.join(sorted(LOADERS))}")
    size = cfg.image_size or input_size
    ss = subsample(LOADERS[cfg.name](cfg, size), cfg)
    ss.images = resize(ss.images, size)
    return ss


def require_root(cfg: DatasetConfig, what: str) -> Path:
    """dataset.root as an existing path, or an error that says what the loader expects there."""
    if not cfg.root:
        raise ConfigError(f"dataset.root is required for dataset.name={cfg.name!r}: give {what}")
    root = Path(cfg.root).expanduser()
    if not root.exists():
        raise ConfigError(f"dataset.root={cfg.root!r} does not exist; give {what}")
    return root
