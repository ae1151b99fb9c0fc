"""Files a user points the tool at: every dataset format with a missing, truncated, corrupt or
hostile file, model checkpoints, and run directories that cannot hold a run. Each must be refused
with one line naming the file, before anything is written; nothing in them may run code."""

from __future__ import annotations

import pickle
import struct

import numpy as np

from nnts_ray.reliability import files as f
from nnts_ray.reliability.model import Case, Cli, Refused, Setup

ISSUE = True


def _case(group: str, name: str, tried: str, argv: tuple[str, ...], setup: Setup | None, mentions: tuple[str, ...],
          issue: bool = False) -> Case:
    return Case(f"{group}/{name}", group, tried, Cli(argv), Refused(mentions), setup=setup,
                in_issue=issue)


def _mnist(name: str, tried: str, mentions: tuple[str, ...], issue: bool = False, split: str | None = None,
           **replace: bytes | str) -> Case:
    argv = ("dataset=mnist", "dataset.root={data}") + ((f"dataset.split={split}",) if split else ())
    return _case("data", f"mnist-{name}", tried, argv, f.files(f.mnist_files(**replace)), mentions, issue)


def _cifar(name: str, tried: str, mentions: tuple[str, ...], layout: dict, argv: tuple[str, ...] = ()) -> Case:
    return _case("data", f"cifar10-{name}", tried, ("dataset=cifar10", "dataset.root={data}", *argv),
                 f.files(layout), mentions)


def _parquet(name: str, tried: str, content, mentions: tuple[str, ...], issue: bool = False,
             argv: tuple[str, ...] = ()) -> Case:
    return _case("data", f"parquet-{name}", tried, ("dataset=parquet", "dataset.root={data}/images.parquet", *argv),
                 f.files({"data/images.parquet": content}), mentions, issue)


def _folder(name: str, tried: str, layout: dict, mentions: tuple[str, ...], issue: bool = False) -> Case:
    return _case("data", f"image_folder-{name}", tried, ("dataset=image_folder", "dataset.root={data}"),
                 f.files(layout), mentions, issue)


def _checkpoint(name: str, tried: str, content, mentions: tuple[str, ...] = ("ckpt.pt",), issue: bool = False) -> Case:
    setup = f.files({"data/ckpt.pt": content}) if content is not None else None
    return _case("checkpoint", name, tried, ("model.checkpoint={data}/ckpt.pt",), setup, mentions, issue)


def _idx_header(dims: tuple[int, ...], ndim: int | None = None) -> bytes:
    return struct.pack(">HBB", 0, 0x08, ndim or len(dims)) + struct.pack(f">{len(dims)}I", *dims)


def _truncated_png() -> bytes:
    return f.png(np.full((12, 12), 7, np.uint8))[:40]


def cases() -> list[Case]:
    img = "train-images-idx3-ubyte"
    x, y = f.images(f.N_TRAIN, (28, 28), 1)
    out = [
        _case("data", "mnist-no-root", "`dataset=mnist` without dataset.root", ("dataset=mnist",), None, ("root",)),
        _case("data", "mnist-root-missing", "`dataset=mnist dataset.root=<no such dir>`",
              ("dataset=mnist", "dataset.root={ws}/nowhere"), None, ("nowhere",)),
        _case("data", "mnist-empty-dir", "`dataset=mnist` on an empty directory", ("dataset=mnist", "dataset.root={data}"),
              f.files({"data": "<dir>"}), (img,)),
        _case("data", "fashion_mnist-empty-dir", "`dataset=fashion_mnist` on an empty directory",
              ("dataset=fashion_mnist", "dataset.root={data}"), f.files({"data": "<dir>"}), (img,)),
        _mnist("2-byte-images", "train images file of 2 bytes", (img,), ISSUE, **{img: b"\0\0"}),
        _mnist("not-gzip", "`train-images-idx3-ubyte.gz` that is not gzip", (f"{img}.gz",), ISSUE,
               **{f"{img}.gz": b"this is not gzip data"}),
        _mnist("overflow-header", "IDX header dims 2^31 × 2^31 × 4 (product overflows to 0), no data", (img,), ISSUE,
               **{img: _idx_header((2**31, 2**31, 4))}),
        _mnist("header-cut", "IDX header declaring 200 dims in a 14-byte file", (img,),
               **{img: _idx_header((), ndim=200) + b"\0" * 10}),
        _mnist("bad-magic", "train images file with a wrong magic number", (img,), **{img: b"GARBAGE!" * 4}),
        _mnist("short-body", "train images with half the bytes the header promises", (img,),
               **{img: f.idx(x)[: 16 + x.size // 2]}),
        _mnist("label-count", "39 labels for 40 images", ("train",), **{"train-labels-idx1-ubyte": f.idx(y[:39])}),
        _mnist("2d-images", "train images stored as (n, 784)", ("train",), **{img: f.idx(x.reshape(len(x), -1))}),
        _mnist("split-bogus", "`dataset.split=bogus` with valid files", ("split", "bogus"), split="bogus"),
        _mnist("test-missing", "`dataset.split=all` without the t10k files", ("t10k-images-idx3-ubyte",), split="all",
               **{"t10k-images-idx3-ubyte": None, "t10k-labels-idx1-ubyte": None}),
        _cifar("bin-size", "a .bin batch of 1,000 bytes", ("data_batch_1.bin",),
               f.cifar_files("bin", data_batch_1=b"\0" * 1000)),
        _cifar("bin-missing-batch", "data_batch_3.bin missing", ("data_batch_3.bin",),
               {k: v for k, v in f.cifar_files("bin").items() if "batch_3" not in k}),
        _cifar("py-code-pickle", "a python batch whose pickle calls os.system", ("data_batch_1",),
               f.cifar_files("py", data_batch_1=f.code_pickle())),
        _cifar("py-list", "a python batch that pickles a list", ("data_batch_1",),
               f.cifar_files("py", data_batch_1=pickle.dumps([1, 2, 3]))),
        _cifar("py-truncated", "a python batch cut in half", ("data_batch_1",),
               f.cifar_files("py", data_batch_1=f.cifar_files("py")["data/cifar-10-batches-py/data_batch_1"][:500])),
        _cifar("py-shape", "a python batch with (n, 100) data", ("data_batch_1",),
               f.cifar_files("py", data_batch_1=pickle.dumps(
                   {b"data": np.zeros((10, 100), np.uint8), b"labels": [0] * 10}, protocol=2))),
        _cifar("no-batches", "`dataset=cifar10` on a directory without batches", ("root",), {"data/readme.txt": "x"}),
        _cifar("split-bogus", "`dataset.split=bogus`", ("split", "bogus"), f.cifar_files("bin"), ("dataset.split=bogus",)),
        _folder("truncated-png", "one PNG cut after 40 bytes", f.image_folder_files(**{"a/04.png": _truncated_png()}),
                ("04.png",), ISSUE),
        _folder("garbage-png", "a .png file holding text", f.image_folder_files(**{"b/05.png": b"not an image"}),
                ("05.png",)),
        _folder("empty-png", "a zero-byte .png", f.image_folder_files(**{"a/06.png": b""}), ("06.png",)),
        _folder("no-classes", "a root without class folders", {"data/readme.txt": "x"}, ("root",)),
        _parquet("garbage", "a .parquet file holding text", b"this is not parquet", ("images.parquet",), ISSUE),
        _parquet("negative-labels", "labels -1 … -3", f.image_table(label=-1 - np.arange(40) % 3), ("label",), ISSUE),
        _parquet("duplicate-ids", "sample_id 7 twice", f.image_table(sample_id=np.r_[np.arange(39), 7]),
                 ("sample_id", "7"), ISSUE),
        _parquet("null-labels", "a null label", f.image_table(label=[None] + [1] * 39), ("label",)),
        _parquet("string-labels", "labels 'cat'/'dog'", f.image_table(label=["cat", "dog"] * 20), ("label",)),
        _parquet("string-ids", "sample_id 'a0' … 'a39'", f.image_table(sample_id=[f"a{i}" for i in range(40)]),
                 ("sample_id",)),
        _parquet("no-image-column", "only scalar columns", lambda: f.parquet_bytes({"label": list(range(40))}),
                 ("image",)),
        _parquet("zero-rows", "a table with no rows", f.image_table(n=0), ("images.parquet",)),
        _parquet("split-empty", "`dataset.split=test` on a table whose split column holds only 'train'",
                 f.image_table(split=["train"] * 40), ("split", "test"), argv=("dataset.split=test",)),
        _parquet("ragged-tensors", "tensor rows of two shapes", lambda: f.parquet_bytes(
            {"image": [[0.0] * 64] * 20 + [[0.0] * 36] * 20, "label": [0] * 40}), ("image",)),
        _parquet("flat-tensors", "flat tensors of length 50 (not s² or 3·s²)", lambda: f.parquet_bytes(
            {"image": [[0.0] * 50] * 40, "label": [0] * 40}), ("image", "50")),
        _checkpoint("missing", "`model.checkpoint=<no such file>`", None),
        _checkpoint("empty", "a zero-byte checkpoint", b"", issue=ISSUE),
        _checkpoint("truncated", "a state_dict file cut in half",
                    f.first_half(lambda: f.state_dict_bytes(f.lenet_state())), issue=ISSUE),
        _checkpoint("code-pickle", "a checkpoint whose pickle calls os.system",
                    lambda: f.state_dict_bytes({"w": f.RunsCode()})),
        _checkpoint("wrong-shapes", "a state_dict of another architecture",
                    lambda: f.state_dict_bytes({"conv.weight": f.zeros(3, 3)})),
        _checkpoint("tensor", "a file holding one tensor", lambda: f.state_dict_bytes(f.zeros(3))),
        _checkpoint("garbage", "a checkpoint holding text", b"not a checkpoint at all"),
        _case("checkpoint", "directory", "`model.checkpoint=<a directory>`", ("model.checkpoint={data}",),
              f.files({"data": "<dir>"}), ("data",)),
        _case("run_dir", "is-a-file", "`run_dir=<a file>`", ("run_dir={ws}/afile",), f.files({"afile": "mine"}),
              ("afile",), ISSUE),
        _case("run_dir", "parent-is-a-file", "`run_dir=<a file>/run`", ("run_dir={ws}/afile/run",),
              f.files({"afile": "mine"}), ("afile",)),
        _case("run_dir", "not-a-run", "`run_dir=` a non-empty directory holding no run", (),
              f.files({"run/notes.txt": "mine"}), ("run_dir",)),
        _case("run_dir", "read-only", "`run_dir=` below a read-only directory (EROFS)", ("run_dir={ws}/rodir/run",),
              f.read_only("rodir"), ("rodir",), ISSUE),
        _case("run_dir", "cache-is-a-file", "`paths.cache_dir=<a file>`", ("paths.cache_dir={ws}/cachefile",),
              f.files({"cachefile": "mine"}), ("cachefile",)),
    ]
    return out
