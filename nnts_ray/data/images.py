"""Your own images: a folder with one sub-folder per class, or a Parquet table of images or tensors.

image_folder: `root/<class>/**/<file>` (PNG, JPEG, BMP, GIF, TIFF, WebP, PPM/PGM). Labels are the
index of the class folder in sorted order; sample_id is the file's index in sorted relative-path order
(so adding a file to one class renumbers the files after it); the relative path is kept as `path`.
Images are grey (1 channel) when every file is greyscale, else RGB (3 channels); images of different
sizes are resized to the run's image size.

parquet: a file or a directory of files with an image column — encoded image bytes (PNG, JPEG…) or a
tensor per row (an Arrow fixed-shape tensor, a Ray Data tensor column, nested lists (C, H, W) or
(H, W), or a flat list of s² or 3·s² numbers read as (1|3, s, s)) — plus optional `sample_id`
(else the row position in sorted-file order), `label` and `split` (rows of `dataset.split` are kept
unless `split=all`). Other scalar columns are carried into samples.parquet. Read with Ray Data when
Ray is initialised in this process, else with pyarrow.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa

from nnts_ray.config import ConfigError, DatasetConfig
from nnts_ray.data.base import SampleSet, register, require_root, resize

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
GREY_MODES = {"1", "L", "I", "I;16", "F"}
IMAGE_COLUMNS = ("image", "tensor", "pixels", "x")  # looked for in this order


def decode_images(blobs: list, size: int, names: list[str]) -> np.ndarray:
    """Encoded images (bytes or paths) → (n, C, H, W) uint8; grey only when every image is grey."""
    from PIL import Image, UnidentifiedImageError

    def open_image(blob, name):
        try:
            return Image.open(io.BytesIO(blob) if isinstance(blob, bytes) else blob)
        except (UnidentifiedImageError, OSError) as e:
            raise ConfigError(f"{name} is not a readable image ({e})") from e

    modes = set()
    for blob, name in zip(blobs, names):  # headers only: PIL decodes pixels lazily
        with open_image(blob, name) as im:
            modes.add(im.mode)
    mode = "L" if modes <= GREY_MODES else "RGB"
    arrays = []
    for blob, name in zip(blobs, names):
        with open_image(blob, name) as im:
            try:
                a = np.asarray(im.convert(mode), dtype=np.uint8)  # pixels are decoded here
            except (OSError, ValueError, SyntaxError) as e:  # truncated or corrupt image data
                raise ConfigError(f"{name} is not a readable image ({e})") from None
        arrays.append(a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0))  # (C, H, W)
    if len({a.shape for a in arrays}) > 1:  # mixed sizes: bring each to the run's size
        return np.stack([resize(a[None], size)[0] for a in arrays])
    return np.stack(arrays)


@register("image_folder")
def image_folder(cfg: DatasetConfig, size: int) -> SampleSet:
    root = require_root(cfg, "a directory with one sub-folder of images per class")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files = sorted((p.relative_to(root).as_posix() for c in classes for p in (root / c).rglob("*")
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=str)
    if not files:
        raise ConfigError(f"dataset.root={cfg.root!r} holds no images in class sub-folders "
                          f"(<root>/<class>/<file> with suffix {', '.join(sorted(IMAGE_SUFFIXES))})")
    labels = np.array([classes.index(f.split("/", 1)[0]) for f in files], dtype=np.int64)
    images = decode_images([root / f for f in files], size, files)
    return SampleSet(np.arange(len(files), dtype=np.int64), labels, images, {"path": np.array(files)})


def read_table(root: Path) -> pa.Table:
    """Every Parquet file under `root` as one table, rows in sorted-file order."""
    import pyarrow.parquet as pq

    files = sorted(root.rglob("*.parquet")) if root.is_dir() else [root]
    if not files:
        raise ConfigError(f"dataset.root={str(root)!r} holds no .parquet files")
    for f in files:  # footers only: a broken file is named before anything is read
        try:
            pq.read_metadata(f)
        except (pa.ArrowException, OSError) as e:
            raise ConfigError(f"{f} is not a readable Parquet file ({str(e).splitlines()[0]})") from None
    import ray

    if ray.is_initialized():
        import ray.data

        ctx = ray.data.DataContext.get_current()
        keep, ctx.execution_options.preserve_order = ctx.execution_options.preserve_order, True
        try:
            blocks = ray.get(ray.data.read_parquet([str(f) for f in files]).to_arrow_refs())
        finally:
            ctx.execution_options.preserve_order = keep
        return pa.concat_tables(blocks)
    if any(b"ray." in (f.metadata or {}).get(b"ARROW:extension:name", b"") for f in pq.read_schema(files[0])):
        import ray.data  # noqa: F401  (registers Ray's tensor extension type before reading)
    return pa.concat_tables([pq.read_table(f) for f in files])


def _column_to_array(col: pa.ChunkedArray, size: int, name: str) -> np.ndarray:
    """An image or tensor column → (n, C, H, W) array (uint8 stays uint8, else float32)."""
    arr = col.combine_chunks()
    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        return decode_images(arr.to_pylist(), size, [f"row {i} of column {name!r}" for i in range(len(arr))])
    if isinstance(arr, pa.FixedShapeTensorArray):
        x = arr.to_numpy_ndarray()
    elif isinstance(arr, pa.ExtensionArray) and hasattr(arr, "to_numpy"):  # Ray Data's tensor column
        x = np.asarray(arr.to_numpy())
    elif pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type) or pa.types.is_fixed_size_list(arr.type):
        x = _nested_lists(arr, name)
    else:
        raise ConfigError(f"column {name!r} has type {arr.type}; an image column holds encoded image bytes or tensors")
    if x.dtype == object:
        raise ConfigError(f"column {name!r} holds tensors of different shapes; every row needs the same shape")
    return _as_chw(x, name)


def _nested_lists(arr: pa.Array, name: str) -> np.ndarray:
    """Regular nested lists → one array of shape (n, d1, d2, …)."""
    import pyarrow.compute as pc

    shape = [len(arr)]
    while pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type) or pa.types.is_fixed_size_list(arr.type):
        lengths = pc.unique(pc.list_value_length(arr)).to_pylist()
        if len(lengths) != 1 or lengths[0] is None:
            raise ConfigError(f"column {name!r} holds lists of lengths {sorted(map(str, lengths))}; "
                              f"every row needs the same shape")
        shape.append(lengths[0])
        arr = arr.flatten()
    x = arr.to_numpy(zero_copy_only=False)
    return x.reshape(shape)


def _as_chw(x: np.ndarray, name: str) -> np.ndarray:
    """(n, H, W) → (n, 1, H, W); (n, L) with L = s² or 3s² → (n, 1|3, s, s); (n, C, H, W) as is."""
    if x.ndim == 2:
        L = x.shape[1]
        for c in (1, 3):
            s = int(round(np.sqrt(L / c)))
            if c * s * s == L:
                return _dtype(x.reshape(len(x), c, s, s))
        raise ConfigError(f"column {name!r} holds flat tensors of length {L}, not s² or 3·s²; "
                          f"store them as nested (C, H, W) lists or a fixed-shape tensor column")
    if x.ndim == 3:
        return _dtype(x[:, None])
    if x.ndim == 4:
        return _dtype(x)
    raise ConfigError(f"column {name!r} holds tensors of shape {x.shape[1:]}; expected (H, W) or (C, H, W)")


def _dtype(x: np.ndarray) -> np.ndarray:
    return x if x.dtype == np.uint8 else x.astype(np.float32)


def _image_column(table: pa.Table) -> str:
    for c in IMAGE_COLUMNS:
        if c in table.column_names:
            return c
    nested = [f.name for f in table.schema if not _is_scalar(f.type)]
    if len(nested) == 1:
        return nested[0]
    raise ConfigError(f"no image column found among {table.column_names}; name it one of {', '.join(IMAGE_COLUMNS)} "
                      f"or keep exactly one binary/list/tensor column")


def _is_scalar(t: pa.DataType) -> bool:
    return (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_string(t)
            or pa.types.is_large_string(t) or pa.types.is_boolean(t) or pa.types.is_dictionary(t))


@register("parquet")
def parquet(cfg: DatasetConfig, size: int) -> SampleSet:
    root = require_root(cfg, "a Parquet file or a directory of Parquet files")
    table = read_table(root)
    if len(table) == 0:
        raise ConfigError(f"dataset.root={str(root)!r} holds a table with no rows; give at least 2 samples")
    for column in ("sample_id", "label"):  # identities and class indices: integers, never parsed from text
        if column in table.column_names and not pa.types.is_integer(table.schema.field(column).type):
            raise ConfigError(f"column {column!r} of dataset.root={str(root)!r} has type "
                              f"{table.schema.field(column).type}; it must hold integers"
                              + (" (class indices 0, 1, 2, …)" if column == "label" else ""))
    if "sample_id" not in table.column_names:
        table = table.append_column("sample_id", pa.array(np.arange(len(table), dtype=np.int64)))
    if "split" in table.column_names and cfg.split != "all":
        import pyarrow.compute as pc

        table = table.filter(pc.equal(table.column("split").cast(pa.string()), cfg.split))
        if len(table) == 0:
            raise ConfigError(f"dataset.split={cfg.split!r} selects no rows; the table's split column holds "
                              f"other values (or give dataset.split=all)")
    image = _image_column(table)
    labels = table.column("label") if "label" in table.column_names else None
    if labels is not None and labels.null_count:
        raise ConfigError(f"column 'label' has {labels.null_count} nulls; give every row a label or drop the column")
    extra = {c: table.column(c).to_numpy(zero_copy_only=False) for c in table.column_names
             if c not in ("sample_id", "label", image) and _is_scalar(table.schema.field(c).type)}
    return SampleSet(table.column("sample_id").to_numpy().astype(np.int64),
                     None if labels is None else labels.to_numpy().astype(np.int64),
                     _column_to_array(table.column(image), size, image), extra)
