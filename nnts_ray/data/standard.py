"""MNIST, Fashion-MNIST and CIFAR-10 from local directories in their standard distribution formats.

Nothing is downloaded unless `dataset.download=true` is given (then torchvision's downloader fetches
the same files into `dataset.root`, where the machine is online). Sample ids are the row index within
the split's files (train: 0…n_train−1, test: 0…n_test−1); `split=all` is train then test, with test ids
offset by n_train. Images stay uint8 here; `load_dataset` scales them to [0, 1] after subsampling.

CIFAR-10 is read from the binary distribution (`cifar-10-batches-bin`, parsed with numpy) when present,
else from the python distribution (`cifar-10-batches-py`) through an unpickler that admits only the
numpy array reconstruction those batch files contain (and `_codecs.encode`, which turns text into bytes
in protocol-2 pickles) — a batch file that names any other global is
refused, so a crafted file cannot run code.
"""

from __future__ import annotations

import gzip
import io
import math
import pickle
import struct
from pathlib import Path

import numpy as np

from nnts_ray.config import ConfigError, DatasetConfig
from nnts_ray.data.base import SampleSet, register, require_root

SPLITS = ("train", "test", "all")

# IDX element types (http://yann.lecun.com/exdb/mnist/): third byte of the magic number.
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _check_split(cfg: DatasetConfig) -> list[str]:
    if cfg.split not in SPLITS:
        raise ConfigError(f"dataset.split={cfg.split!r} is not allowed for {cfg.name}; choose one of: {', '.join(SPLITS)}")
    return ["train", "test"] if cfg.split == "all" else [cfg.split]


def _concat_splits(parts: dict[str, tuple[np.ndarray, np.ndarray]]) -> SampleSet:
    """Per-split (images, labels) → one SampleSet; ids continue across splits in train, test order."""
    ids, labels, images, split = [], [], [], []
    offset = 0
    for name, (x, y) in parts.items():
        ids.append(np.arange(offset, offset + len(x), dtype=np.int64))
        labels.append(y.astype(np.int64))
        images.append(x)
        split.append(np.full(len(x), name))
        offset += len(x)
    return SampleSet(np.concatenate(ids), np.concatenate(labels), np.concatenate(images),
                     {"split": np.concatenate(split)})


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (optionally gzipped) as an array of its declared type and shape."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise ConfigError(f"{path} cannot be read as {'a gzipped ' if path.suffix == '.gz' else 'an '}IDX file ({e})") from None
    if len(raw) < 4:
        raise ConfigError(f"{path} holds {len(raw)} bytes; an IDX file starts with a 4-byte magic number")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in _IDX_DTYPES:
        raise ConfigError(f"{path} is not an IDX file (magic {raw[:4].hex()})")
    if len(raw) < 4 + 4 * ndim:
        raise ConfigError(f"{path} ends inside its header ({len(raw)} bytes for {ndim} dimensions)")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = math.prod(dims) * dtype.itemsize  # Python ints: a forged header cannot overflow
    body = raw[4 + 4 * ndim:]
    if len(body) != expected:
        raise ConfigError(f"{path} holds {len(body)} data bytes; its header {dims} says {expected}")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _find(root: Path, subdirs: list[str], names: list[str], what: str) -> Path:
    """The first of `names` (or name.gz) in root or one of its standard sub-directories."""
    for d in [root] + [root / s for s in subdirs]:
        for name in names:
            for candidate in (d / name, d / f"{name}.gz"):
                if candidate.is_file():
                    return candidate
    raise ConfigError(f"{names[0]}[.gz] not found in dataset.root={str(root)!r} (or {', '.join(subdirs)}); "
                      f"give {what}, or dataset.download=true on a machine that is online")


def _idx_dataset(cfg: DatasetConfig, torchvision_name: str) -> SampleSet:
    what = "a directory with the IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-… (optionally .gz)"
    splits = _check_split(cfg)
    root = require_root(cfg, what) if not cfg.download else Path(cfg.root or ".")
    subdirs = ["raw", f"{torchvision_name}/raw"]
    if cfg.download:
        _download(torchvision_name, root, splits)
    parts = {}
    for split in splits:
        img_name, lab_name = _IDX_FILES[split]
        images = read_idx(_find(root, subdirs, [img_name, img_name.replace("-idx", ".idx")], what))
        labels = read_idx(_find(root, subdirs, [lab_name, lab_name.replace("-idx", ".idx")], what))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ConfigError(f"{cfg.name} {split}: images {images.shape} and labels {labels.shape} do not match")
        parts[split] = (np.asarray(images, dtype=np.uint8)[:, None], labels)  # (n, 1, 28, 28)
    return _concat_splits(parts)


@register("mnist")
def mnist(cfg: DatasetConfig, size: int) -> SampleSet:
    """MNIST from its IDX files (60,000 train / 10,000 test 28×28 grey digits)."""
    return _idx_dataset(cfg, "MNIST")


@register("fashion_mnist")
def fashion_mnist(cfg: DatasetConfig, size: int) -> SampleSet:
    """Fashion-MNIST: the same IDX file names and layout as MNIST."""
    return _idx_dataset(cfg, "FashionMNIST")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits the globals a CIFAR-10 python batch needs (numpy array reconstruction, and the bytes
    decoding of protocol-2 pickles written by Python 3), nothing else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch file")
        return super().find_class(module, name)


def _cifar_py_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        d = _NumpyOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise ConfigError(f"{path} is not a CIFAR-10 python batch: {e}") from e
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise ConfigError(f"{path} is not a CIFAR-10 python batch (no b'data'/b'labels' entries)")
    data = np.asarray(d[b"data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ConfigError(f"{path}: data is {data.dtype} {data.shape}; a CIFAR-10 batch holds uint8 (n, 3072)")
    return data.reshape(-1, 3, 32, 32), np.asarray(d[b"labels"], dtype=np.int64)


def _cifar_bin_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073:
        raise ConfigError(f"{path} holds {raw.size} bytes, not a multiple of 3073 (label + 32×32×3 pixels)")
    rows = raw.reshape(-1, 3073)
    return rows[:, 1:].reshape(-1, 3, 32, 32), rows[:, 0].astype(np.int64)


_CIFAR_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


@register("cifar10")
def cifar10(cfg: DatasetConfig, size: int) -> SampleSet:
    """CIFAR-10 (50,000 train / 10,000 test 32×32 RGB images) from cifar-10-batches-bin or -py."""
    what = "a directory holding cifar-10-batches-bin/ or cifar-10-batches-py/ (data_batch_1…5, test_batch)"
    splits = _check_split(cfg)
    root = require_root(cfg, what) if not cfg.download else Path(cfg.root or ".")
    if cfg.download:
        _download("CIFAR10", root, splits)
    layouts = [(root / "cifar-10-batches-bin", ".bin", _cifar_bin_batch), (root, ".bin", _cifar_bin_batch),
               (root / "cifar-10-batches-py", "", _cifar_py_batch), (root, "", _cifar_py_batch)]
    for directory, suffix, read in layouts:
        if (directory / f"test_batch{suffix}").is_file() or (directory / f"data_batch_1{suffix}").is_file():
            break
    else:
        raise ConfigError(f"no CIFAR-10 batches in dataset.root={str(root)!r}; give {what}, "
                          f"or dataset.download=true on a machine that is online")
    parts = {}
    for split in splits:
        files = [directory / f"{b}{suffix}" for b in _CIFAR_BATCHES[split]]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise ConfigError(f"CIFAR-10 {split} split incomplete in {str(directory)!r}: missing {', '.join(missing)}")
        batches = [read(f) for f in files]
        parts[split] = (np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]))
    return _concat_splits(parts)


def _download(torchvision_name: str, root: Path, splits: list[str]) -> None:
    """Fetch the standard files with torchvision (only on dataset.download=true)."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, torchvision_name)
    try:
        for split in splits:
            cls(str(root), train=split == "train", download=True)
    except Exception as e:  # noqa: BLE001 — offline machines end here
        raise ConfigError(f"could not download {torchvision_name} into {str(root)!r} ({type(e).__name__}: {e}); "
                          f"put the files there yourself and leave dataset.download=false") from e
