"""Image folders and Parquet tables (encoded images and tensors), with pyarrow and with Ray Data."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nnts_ray.config import ConfigError, DatasetConfig
from nnts_ray.data import load_dataset
from tests.data.formats import images_and_labels, png_bytes


def _folder(root, files: dict[str, np.ndarray]) -> None:
    for rel, chw in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(png_bytes(chw))


def test_image_folder_ids_follow_sorted_paths_labels_follow_sorted_classes(tmp_path):
    x, _ = images_and_labels(4, (1, 6, 6))
    files = {"dog/b.png": x[0], "cat/z.png": x[1], "dog/a/deep.png": x[2], "cat/a.png": x[3]}
    _folder(tmp_path, files)
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    ss = load_dataset(DatasetConfig(name="image_folder", root=str(tmp_path)), input_size=6)
    assert ss.extra["path"].tolist() == ["cat/a.png", "cat/z.png", "dog/a/deep.png", "dog/b.png"]
    assert ss.sample_ids.tolist() == [0, 1, 2, 3] and ss.labels.tolist() == [0, 0, 1, 1]
    np.testing.assert_allclose(ss.images, np.stack([files[p] for p in ss.extra["path"]]) / 255.0, atol=1e-7)
    assert "path" in ss.table(thumbnails=False).column_names


def test_image_folder_rgb_when_any_image_is_colour_and_mixed_sizes_are_resized(tmp_path):
    grey, _ = images_and_labels(1, (1, 8, 8))
    rgb, _ = images_and_labels(1, (3, 5, 5), seed=1)
    _folder(tmp_path, {"a/grey.png": grey[0], "b/rgb.png": rgb[0]})
    ss = load_dataset(DatasetConfig(name="image_folder", root=str(tmp_path)), input_size=16)
    assert ss.images.shape == (2, 3, 16, 16) and ss.images.dtype == np.float32
    assert np.allclose(ss.images[0, 0], ss.images[0, 1])  # grey converted to RGB: equal channels


def test_image_folder_errors_name_the_problem(tmp_path):
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(ConfigError, match="holds no images"):
        load_dataset(DatasetConfig(name="image_folder", root=str(tmp_path / "empty")), 8)
    (tmp_path / "broken" / "cls").mkdir(parents=True)
    (tmp_path / "broken" / "cls" / "x.png").write_bytes(b"not a png")
    with pytest.raises(ConfigError, match="cls/x.png is not a readable image"):
        load_dataset(DatasetConfig(name="image_folder", root=str(tmp_path / "broken")), 8)


def _png_table() -> tuple[pa.Table, np.ndarray]:
    x, y = images_and_labels(6, (1, 8, 8))
    ids = np.array([50, 10, 40, 20, 30, 60])
    t = pa.table({"sample_id": ids, "label": y.astype(np.int64), "image": [png_bytes(a) for a in x],
                  "split": ["train", "train", "test", "train", "train", "test"], "source": [f"s{i}" for i in ids]})
    return t, x


def test_parquet_png_column_keeps_ids_extra_columns_and_split(tmp_path):
    t, x = _png_table()
    pq.write_table(t, tmp_path / "t.parquet")
    every = load_dataset(DatasetConfig(name="parquet", root=str(tmp_path / "t.parquet"), split="all"), input_size=8)
    order = np.argsort(t.column("sample_id").to_numpy())
    assert every.sample_ids.tolist() == [10, 20, 30, 40, 50, 60]
    assert every.labels.tolist() == t.column("label").to_numpy()[order].tolist()
    np.testing.assert_allclose(every.images, x[order] / 255.0, atol=1e-7)
    assert every.extra["source"].tolist() == [f"s{i}" for i in every.sample_ids]
    train = load_dataset(DatasetConfig(name="parquet", root=str(tmp_path), split="train"), input_size=8)
    assert train.sample_ids.tolist() == [10, 20, 30, 50]


def _tensor_tables(x: np.ndarray) -> dict[str, pa.Table]:
    """One table per tensor encoding of the same (n, 1, 4, 4) float32 images, no sample_id column."""
    flat = x.reshape(len(x), -1)
    fst = pa.ExtensionArray.from_storage(pa.fixed_shape_tensor(pa.float32(), [1, 4, 4]),
                                         pa.array(flat.tolist(), pa.list_(pa.float32(), 16)))
    return {
        "nested": pa.table({"tensor": pa.array(x.tolist()), "label": [0, 1, 0, 1, 0]}),
        "hw": pa.table({"pixels": pa.array(x[:, 0].tolist())}),
        "flat": pa.table({"x": pa.array(flat.tolist(), pa.list_(pa.float32(), 16))}),
        "fixed_shape": pa.table({"t": fst}),
    }


@pytest.mark.parametrize("kind", ["nested", "hw", "flat", "fixed_shape"])
def test_parquet_tensor_columns_row_position_ids(tmp_path, kind):
    x = np.random.default_rng(0).random((5, 1, 4, 4), dtype=np.float32)
    pq.write_table(_tensor_tables(x)[kind], tmp_path / "t.parquet")
    ss = load_dataset(DatasetConfig(name="parquet", root=str(tmp_path)), input_size=4)
    assert ss.sample_ids.tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(ss.images, x, rtol=1e-6)
    assert (ss.labels is None) == (kind != "nested")


def test_parquet_directory_rows_in_sorted_file_order(tmp_path):
    x = np.random.default_rng(1).random((5, 1, 4, 4), dtype=np.float32)
    t = _tensor_tables(x)["nested"]
    pq.write_table(t.slice(3), tmp_path / "part-1.parquet")
    pq.write_table(t.slice(0, 3), tmp_path / "part-0.parquet")
    ss = load_dataset(DatasetConfig(name="parquet", root=str(tmp_path)), input_size=4)
    np.testing.assert_allclose(ss.images, x, rtol=1e-6)


def test_parquet_errors_name_the_column(tmp_path):
    pq.write_table(pa.table({"a": [[1.0, 2.0]], "b": [[1.0]]}), tmp_path / "two.parquet")
    with pytest.raises(ConfigError, match="no image column"):
        load_dataset(DatasetConfig(name="parquet", root=str(tmp_path / "two.parquet")), 4)
    pq.write_table(pa.table({"tensor": [[1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0, 5.0]]}), tmp_path / "flat.parquet")
    with pytest.raises(ConfigError, match="length 5, not s²"):
        load_dataset(DatasetConfig(name="parquet", root=str(tmp_path / "flat.parquet")), 4)
    pq.write_table(pa.table({"tensor": [[[1.0, 2.0]], [[1.0]]]}), tmp_path / "ragged.parquet")
    with pytest.raises(ConfigError, match="same shape"):
        load_dataset(DatasetConfig(name="parquet", root=str(tmp_path / "ragged.parquet")), 4)



@pytest.mark.parametrize("columns, message", [
    ({"label": ["cat", "dog"]}, r"column 'label' of dataset.root=.*bad.parquet' has type string; it must hold integers"),
    ({"sample_id": ["a0", "a1"]}, r"column 'sample_id' of dataset.root=.*bad.parquet' has type string"),
    ({"sample_id": [0.5, 1.5]}, r"column 'sample_id' .* has type double"),
])
def test_parquet_ids_and_labels_must_be_integers(tmp_path, columns, message):
    x = np.zeros((2, 1, 4, 4), np.float32)
    pq.write_table(pa.table({"tensor": x.reshape(2, -1).tolist(), **columns}), tmp_path / "bad.parquet")
    with pytest.raises(ConfigError, match=message):
        load_dataset(DatasetConfig(name="parquet", root=str(tmp_path / "bad.parquet")), 4)


def test_parquet_without_rows_names_the_file(tmp_path):
    pq.write_table(pa.table({"tensor": pa.array([], pa.list_(pa.float32()))}), tmp_path / "empty.parquet")
    with pytest.raises(ConfigError, match=r"empty.parquet' holds a table with no rows"):
        load_dataset(DatasetConfig(name="parquet", root=str(tmp_path / "empty.parquet")), 4)


def test_non_finite_pixels_refused_when_loaded(tmp_path):
    x = np.zeros((3, 1, 4, 4), np.float32)
    x[2, 0, 1, 1] = np.nan
    pq.write_table(pa.table({"tensor": x.reshape(3, -1).tolist(), "sample_id": [7, 8, 9]}), tmp_path / "nan.parquet")
    with pytest.raises(ConfigError, match=r"1 samples hold non-finite pixel values, NaN or infinite \(first: sample_id 9\)"):
        load_dataset(DatasetConfig(name="parquet", root=str(tmp_path / "nan.parquet")), 4)

@pytest.mark.ray
def test_parquet_through_ray_data_equals_pyarrow(tmp_path, ray_cluster):
    """With Ray initialised the table is read by Ray Data: same samples, in the same order; a tensor
    column written by Ray Data itself (its own extension type) reads too."""
    import ray.data

    t, _ = _png_table()
    pq.write_table(t.slice(0, 4), tmp_path / "a.parquet")
    pq.write_table(t.slice(4), tmp_path / "b.parquet")
    cfg = DatasetConfig(name="parquet", root=str(tmp_path), split="all")
    via_ray = load_dataset(cfg, input_size=8)
    assert ray_cluster.is_initialized()
    np.testing.assert_array_equal(via_ray.sample_ids, [10, 20, 30, 40, 50, 60])
    x = np.random.default_rng(2).random((4, 1, 4, 4), dtype=np.float32)
    # One block from the start: repartition(1) may concatenate blocks out of order (CI saw it).
    ray.data.from_items([{"label": i % 2, "tensor": x[i]} for i in range(4)],
                        override_num_blocks=1).write_parquet(str(tmp_path / "ray_written"))
    ss = load_dataset(DatasetConfig(name="parquet", root=str(tmp_path / "ray_written")), input_size=4)
    np.testing.assert_allclose(ss.images, x, rtol=1e-6)
    assert ss.labels.tolist() == [0, 1, 0, 1]
