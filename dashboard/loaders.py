"""Every read of the dashboard: the catalog and a run's tables, behind st.cache_data.

Reads are keyed on the file's (mtime, size), so a table a running stage rewrites is read again while
unchanged tables come from the cache. Large tables (per-sample values, neighbours, thumbnails) are
scanned with filters, never loaded whole. Nothing here reads outside the runs root: every run path goes
through `nnts_ray.catalog.resolve_inside`, and names become paths only through `nnts_ray.naming`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import polars as pl
import streamlit as st

from dashboard import RUNS_ENV
from nnts_ray import catalog as run_catalog
from nnts_ray import schemas
from nnts_ray.naming import RunPaths

# Optional tables some runs have (name -> columns the dashboard reads).
CKA = ("model", "layer_a", "layer_b", "cka")
MOST_CHANGED = ("model", "layer_a", "layer_b", "k", "sample_id", "jaccard", "rank")
NNTS_NULL = ("model_a", "layer_a", "model_b", "layer_b", "k", "null_mean", "null_std", "z", "p_value")
REQUIRED = {
    "nnts": tuple(schemas.NNTS.names),
    "nntp": tuple(schemas.NNTP.names),
    "per_sample": tuple(schemas.PER_SAMPLE.names),
    "layers": ("model", "layer", "position", "dim"),
    "cka": CKA,
    "most_changed": MOST_CHANGED,
    "nnts_null": NNTS_NULL,
}
_READ_ERRORS = (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError, ValueError)


class DataError(Exception):
    """A problem with a run's files, worded for the page (shown with st.error, never as a traceback)."""


class MissingTable(DataError):
    """A table this run has not written (yet, or at all): shown as information, not as an error."""


def runs_root() -> Path:
    """The runs directory given to the server; everything the dashboard reads lies below it."""
    value = os.environ.get(RUNS_ENV)
    if not value:
        raise DataError(f"No runs directory given: start the dashboard with `nnts-ray-dashboard --runs DIR` (or set {RUNS_ENV}).")
    root = Path(value).resolve()
    if not root.is_dir():
        raise DataError(f"The runs directory {root} does not exist.")
    return root


@st.cache_data(ttl=10, show_spinner=False)
def catalog(root: str) -> pl.DataFrame:
    """Runs below `root` (a short ttl: runs appear and progress while the page stays open)."""
    return run_catalog.scan(root)


def run_path(root: Path, run: str) -> Path:
    """The run directory `run` (relative to root), refusing path escapes and directories without a manifest."""
    try:
        path = run_catalog.resolve_inside(root, run)
    except run_catalog.PathRefused as exc:
        raise DataError(str(exc)) from None
    if not RunPaths(path).manifest.is_file():
        raise DataError(f"{run!r} is not a run directory under {root} (it has no manifest.json).")
    return path


def _stamp(path: Path) -> tuple[int, int]:
    """(mtime, size): the `stamp` argument of a cached reader only keys the cache, so rewrites are seen."""
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def _label(path: Path) -> str:
    """The path as the page names it: relative to its run directory."""
    return "/".join(path.parts[-2:]) if path.parent.name == RunPaths(".").metrics_dir.name else path.name


@st.cache_data(show_spinner=False, max_entries=16)
def _read_manifest(path: str, stamp: tuple[int, int]) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def manifest(run: Path) -> dict[str, Any]:
    path = RunPaths(run).manifest
    try:
        value = _read_manifest(str(path), _stamp(path))
    except (OSError, ValueError) as exc:
        raise DataError(f"manifest.json could not be read: {exc}") from None
    if not isinstance(value, dict):
        raise DataError("manifest.json is not a JSON object.")
    return value


@st.cache_data(show_spinner=False, max_entries=64)
def _read_parquet(path: str, stamp: tuple[int, int], columns: tuple[str, ...] | None) -> pl.DataFrame:
    return pl.read_parquet(path, columns=list(columns) if columns else None)


def _checked_parquet(path: Path, required: Iterable[str], columns: tuple[str, ...] | None = None) -> pl.DataFrame:
    if not path.is_file():
        raise MissingTable(f"{_label(path)} is not in this run.")
    try:
        frame = _read_parquet(str(path), _stamp(path), columns)
    except _READ_ERRORS as exc:
        raise DataError(f"{_label(path)} could not be read: {exc}") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(f"{_label(path)} lacks the columns {missing}; it has {frame.columns}.")
    return frame


def table(run: Path, name: str) -> pl.DataFrame:
    """metrics/<name>.parquet in full (the small metric tables; per_sample is only ever scanned)."""
    return _checked_parquet(RunPaths(run).metric(name), REQUIRED[name])


def _samples_columns(path: str) -> list[str]:
    return list(pl.scan_parquet(path).collect_schema().names())


def samples(run: Path) -> pl.DataFrame:
    """sample_id and label of every sample (thumbnails stay on disk until a sample is shown)."""
    path = RunPaths(run).samples
    if not path.is_file():
        raise MissingTable("samples.parquet is not in this run.")
    try:
        columns = _samples_columns(str(path))
    except _READ_ERRORS as exc:
        raise DataError(f"samples.parquet could not be read: {exc}") from None
    keep = tuple(c for c in columns if c != "thumbnail")
    return _checked_parquet(path, ("sample_id",), keep)


@st.cache_data(show_spinner=False, max_entries=32)
def _thumbnails(path: str, stamp: tuple[int, int], ids: tuple[int, ...]) -> dict[int, bytes | None]:
    frame = pl.scan_parquet(path).filter(pl.col("sample_id").is_in(ids)).select("sample_id", "thumbnail").collect()
    return dict(zip(frame["sample_id"].to_list(), frame["thumbnail"].to_list()))


def thumbnails(run: Path, ids: Sequence[int]) -> dict[int, bytes | None]:
    """PNG bytes of the given samples; empty when samples.parquet has no thumbnail column."""
    path = RunPaths(run).samples
    try:
        if not path.is_file() or "thumbnail" not in _samples_columns(str(path)):
            return {}
        return _thumbnails(str(path), _stamp(path), tuple(sorted(set(ids))))
    except _READ_ERRORS as exc:
        raise DataError(f"thumbnails in samples.parquet could not be read: {exc}") from None


@st.cache_data(show_spinner=False, max_entries=64)
def _neighbours(run: str, model: str, layers: tuple[str, ...], sample_id: int, k: int) -> pl.DataFrame:
    paths = RunPaths(run)
    scans = [
        pl.scan_parquet(paths.neighbours_dir(model, layer) / "*.parquet")
        .filter((pl.col("sample_id") == sample_id) & (pl.col("rank") < k))
        .select(pl.lit(layer).alias("layer"), "rank", "neighbour_id", "distance")
        .sort("rank")
        for layer in layers
    ]
    return pl.concat(scans).collect()


def neighbour_layers(run: Path, model: str, layers: Sequence[str]) -> list[str]:
    """The probe points (in chain order) whose neighbour table exists: a running search may lack some."""
    paths = RunPaths(run)
    return [layer for layer in layers if any(paths.neighbours_dir(model, layer).glob("*.parquet"))]


def neighbours(run: Path, model: str, layers: Sequence[str], sample_id: int, k: int) -> pl.DataFrame:
    """The k nearest neighbours of one sample at each probe point: only its rows are read."""
    try:
        return _neighbours(str(run), model, tuple(layers), int(sample_id), int(k))
    except _READ_ERRORS as exc:
        raise DataError(f"the neighbour tables of {model} could not be read: {exc}") from None


@st.cache_data(show_spinner=False, max_entries=32)
def _most_changed(source: str, stamp: tuple[int, int], model: str, k: int, layer_a: str, layer_b: str, n: int) -> pl.DataFrame:
    frame = pl.scan_parquet(source)
    same_model = (pl.col("model") == model) if "model" in frame.collect_schema() else (pl.col("model_a") == model) & (pl.col("model_b") == model)
    return (
        frame.filter(same_model & (pl.col("k") == k) & (pl.col("layer_a") == layer_a) & (pl.col("layer_b") == layer_b))
        .select("sample_id", "jaccard")
        .sort("jaccard", "sample_id")
        .head(n)
        .collect()
    )


def most_changed(run: Path, model: str, k: int, layer_a: str, layer_b: str, n: int = 20) -> pl.DataFrame:
    """The n samples whose neighbourhood changes most between two probe points (lowest Jaccard).

    metrics/most_changed.parquet when the run wrote it, else a filtered scan of metrics/per_sample.parquet.
    """
    paths = RunPaths(run)
    source = next((p for p in (paths.metric("most_changed"), paths.metric("per_sample")) if p.is_file()), None)
    if source is None:
        raise MissingTable("Neither metrics/most_changed.parquet nor metrics/per_sample.parquet is in this run.")
    try:
        return _most_changed(str(source), _stamp(source), model, int(k), layer_a, layer_b, n)
    except _READ_ERRORS as exc:
        raise DataError(f"{_label(source)} could not be read: {exc}") from None
