"""Setups: the files a case starts from, written into its workspace — small valid datasets in every
supported format with one file made bad, checkpoints, and copies of the finished base run with one
file damaged. Nothing is downloaded; every file is written here."""

from __future__ import annotations

import io
import os
import pickle
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Callable

import numpy as np

from nnts_ray.reliability.model import Setup, Workspace

N_TRAIN, N_TEST = 40, 20  # more than the base run's largest k (10)

# ------------------------------------------------------------------ plain files


def files(entries: dict[str, bytes | str | Callable[[], bytes]]) -> Setup:
    """Files at paths relative to the workspace (bytes, text, or a function giving bytes); a value
    of "<dir>" makes a directory."""

    def setup(ws: Workspace) -> None:
        for rel, value in entries.items():
            path = ws.root / rel
            if value == "<dir>":
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            data = value() if callable(value) else value
            path.write_bytes(data.encode() if isinstance(data, str) else data)

    return setup


def combine(*setups: Setup) -> Setup:
    def setup(ws: Workspace):
        undo = [u for s in setups if (u := s(ws))]
        return (lambda: [u() for u in reversed(undo)]) if undo else None

    return setup


def read_only(rel: str) -> Setup:
    """An empty directory the case cannot write to: a read-only bind mount (EROFS) where this
    process may mount, else one without write permission."""

    def setup(ws: Workspace):
        path = ws.root / rel
        path.mkdir(parents=True)
        mounted = os.geteuid() == 0 and subprocess.run(
            ["mount", "--bind", "-o", "ro", str(path), str(path)], capture_output=True).returncode == 0
        if mounted and subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], capture_output=True).returncode:
            subprocess.run(["umount", str(path)], capture_output=True)
            mounted = False
        if not mounted:
            path.chmod(0o555)
        return (lambda: subprocess.run(["umount", str(path)], capture_output=True)) if mounted else (
            lambda: path.chmod(0o755))

    return setup


# ------------------------------------------------------------------ dataset formats


def images(n: int, shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8), (np.arange(n) % 3).astype(np.uint8)


def idx(array: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file: magic (0, type, ndim), big-endian dims, data."""
    return struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def mnist_files(**replace: bytes | str | None) -> dict[str, bytes | str]:
    """The four MNIST IDX files (small) in data/, any of them replaced by name."""
    out: dict[str, bytes | str] = {}
    for prefix, n, seed in (("train", N_TRAIN, 1), ("t10k", N_TEST, 2)):
        x, y = images(n, (28, 28), seed)
        out[f"data/{prefix}-images-idx3-ubyte"] = idx(x)
        out[f"data/{prefix}-labels-idx1-ubyte"] = idx(y)
    for name, value in replace.items():  # None: the file is left out
        out.pop(f"data/{name.removesuffix('.gz')}", None)
        if value is not None:
            out[f"data/{name}"] = value
    return out


CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def cifar_files(layout: str, **replace: bytes) -> dict[str, bytes]:
    """The six CIFAR-10 batches (10 images each) in data/cifar-10-batches-<layout>/, `bin` (records
    of a label byte and 3072 pixel bytes) or `py` (pickled dicts), any batch replaced by name."""
    folder, suffix = f"data/cifar-10-batches-{layout}", ".bin" if layout == "bin" else ""
    out = {}
    for i, name in enumerate(CIFAR_BATCHES):
        x, y = images(10, (3, 32, 32), i)
        flat = x.reshape(10, -1)
        out[f"{folder}/{name}{suffix}"] = np.concatenate([y[:, None], flat], 1).tobytes() if layout == "bin" else \
            pickle.dumps({b"labels": [int(v) for v in y], b"data": flat, b"batch_label": name.encode()}, protocol=2)
    out.update({f"{folder}/{k}{suffix}": v for k, v in replace.items()})
    return out


class RunsCode:
    """Unpickling this calls os.system: the file a hostile user hands over as data or weights."""

    def __reduce__(self):
        return os.system, ("touch PWNED",)


def code_pickle() -> bytes:
    return pickle.dumps({b"data": RunsCode(), b"labels": [0]}, protocol=2)


def png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def image_folder_files(**replace: bytes) -> dict[str, bytes]:
    """data/<class>/<i>.png for 2 classes × 8 grey images, any file replaced by its relative path."""
    x, _ = images(16, (12, 12), 3)
    out = {f"data/{'ab'[i % 2]}/{i:02d}.png": png(x[i]) for i in range(16)}
    out.update({f"data/{k}": v for k, v in replace.items()})
    return out


def parquet_bytes(columns: dict[str, list | np.ndarray]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


def image_table(n: int = 40, nan_rows: int = 0, tensors: bool = False, **columns) -> Callable[[], bytes]:
    """A Parquet table of n images with labels: PNG bytes, or float tensors (`tensors`) whose first
    `nan_rows` rows hold a NaN pixel; other columns replace or add to the defaults."""

    def make() -> bytes:
        x, y = images(n, (8, 8), 4)
        if tensors:
            t = x.astype(np.float32) / 255
            t[:nan_rows, 0, 0] = np.nan
            image = [row.tolist() for row in t]
        else:
            image = [png(row) for row in x]
        return parquet_bytes({"image": image, "label": y.astype(np.int64), **columns})

    return make


# ------------------------------------------------------------------ checkpoints


def state_dict_bytes(state: dict | object) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def zeros(*shape: int):
    import torch

    return torch.zeros(*shape)


def first_half(make: Callable[[], bytes]) -> Callable[[], bytes]:
    def cut() -> bytes:
        data = make()
        return data[: len(data) // 2]

    return cut


def lenet_state() -> dict:
    import torch

    from nnts_ray.config import ModelConfig
    from nnts_ray.models.build import build_model

    torch.manual_seed(0)
    return build_model(ModelConfig(), 1, 10).state_dict()


# ------------------------------------------------------------------ finished runs and their damage

Damage = Callable[[Path], None]


def _one(run: Path, pattern: str) -> Path:
    hits = sorted(run.glob(pattern))
    assert hits, f"nothing matches {pattern} in {run}"
    return hits[0]


def truncate(pattern: str, keep: float = 0.5) -> Damage:
    def damage(run: Path) -> None:
        path = _one(run, pattern)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])

    return damage


def remove(pattern: str) -> Damage:
    def damage(run: Path) -> None:
        for path in sorted(run.glob(pattern)):
            shutil.rmtree(path) if path.is_dir() else path.unlink()

    return damage


def overwrite(pattern: str, data: bytes | str) -> Damage:
    def damage(run: Path) -> None:
        _one(run, pattern).write_bytes(data.encode() if isinstance(data, str) else data)

    return damage


def replace_with(pattern: str, other: str) -> Damage:
    """A valid file of the same kind from elsewhere in the run (another probe point's part)."""

    def damage(run: Path) -> None:
        shutil.copyfile(_one(run, other), _one(run, pattern))

    return damage


def edit_manifest(**fields) -> Damage:
    import json

    def damage(run: Path) -> None:
        m = json.loads((run / "manifest.json").read_text())
        m.update(fields)
        (run / "manifest.json").write_text(json.dumps(m))

    return damage


def permute_rows(pattern: str, seed: int = 0) -> Damage:
    """The same shape and dtype, rows in another order: a file that looks right and is not."""

    def damage(run: Path) -> None:
        path = _one(run, pattern)
        x = np.load(path)
        np.save(path, x[np.random.default_rng(seed).permutation(len(x))])

    return damage


def copy_of_base(rel: str = "run", *damages: Damage) -> Setup:
    """A copy of the finished base run at `rel` in the workspace, then `damages` applied to it."""

    def setup(ws: Workspace) -> None:
        assert ws.base_run is not None, "the base run is needed"
        dest = ws.root / rel
        shutil.copytree(ws.base_run, dest, symlinks=True)
        for damage in damages:
            damage(dest)

    return setup
