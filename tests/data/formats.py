"""Writers for tiny files in each supported dataset format (the tests never download anything)."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def images_and_labels(n: int, shape: tuple[int, ...], n_classes: int = 3, seed: int = 0):
    """Distinct seeded uint8 images (n, *shape) and labels cycling over the classes."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8), np.arange(n, dtype=np.uint8) % n_classes


def write_idx(path: Path, array: np.ndarray) -> Path:
    """IDX (ubyte) file; gzipped when the name ends in .gz."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def write_mnist(directory: Path, n_train: int, n_test: int, gz: bool = False) -> dict:
    """The four standard MNIST files; returns what was written per split."""
    out = {}
    suffix = ".gz" if gz else ""
    for split, prefix, n, seed in (("train", "train", n_train, 1), ("test", "t10k", n_test, 2)):
        x, y = images_and_labels(n, (28, 28), seed=seed)
        write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", x)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", y)
        out[split] = (x, y)
    return out


def _cifar_batches(n_per_batch: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return {name: images_and_labels(n_per_batch, (3, 32, 32), n_classes=10, seed=i)
            for i, name in enumerate(names)}


def write_cifar_py(directory: Path, n_per_batch: int) -> dict:
    """cifar-10-batches-py/: pickled dicts with b'data' (n, 3072) uint8 and b'labels' lists."""
    batches = _cifar_batches(n_per_batch)
    directory.mkdir(parents=True, exist_ok=True)
    for name, (x, y) in batches.items():
        d = {b"batch_label": name.encode(), b"labels": [int(v) for v in y], b"data": x.reshape(len(x), -1),
             b"filenames": [f"{name}_{i}.png".encode() for i in range(len(x))]}
        (directory / name).write_bytes(pickle.dumps(d, protocol=2))
    return batches


def write_cifar_bin(directory: Path, n_per_batch: int) -> dict:
    """cifar-10-batches-bin/: records of 1 label byte + 3072 pixel bytes."""
    batches = _cifar_batches(n_per_batch)
    directory.mkdir(parents=True, exist_ok=True)
    for name, (x, y) in batches.items():
        rows = np.concatenate([y[:, None], x.reshape(len(x), -1)], axis=1).astype(np.uint8)
        (directory / f"{name}.bin").write_bytes(rows.tobytes())
    return batches


def png_bytes(chw: np.ndarray) -> bytes:
    """(1|3, H, W) uint8 → PNG bytes (grey or RGB)."""
    a = chw[0] if chw.shape[0] == 1 else np.moveaxis(chw, 0, -1)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()
