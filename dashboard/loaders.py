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

_PAIR = ("model_a", "layer_a", "model_b", "layer_b")
# Columns the dashboard reads from each table (optional ones as the analysis stage writes them).
REQUIRED = {
    "nnts": tuple(schemas.NNTS.names),
    "nntp": tuple(schemas.NNTP.names),
    "per_sample": tuple(schemas.PER_SAMPLE.names),
    "layers": ("model", "layer", "position", "dim"),
    "cka": (*_PAIR, "cka"),
    "nnts_null": (*_PAIR, "k", "z"),
    "per_class": (*_PAIR, "k", "label", "jaccard_mean"),
    "monotonicity": ("model", "k", "spearman_rho"),
    "nntp_partners": ("model", "k", "sample_id", "persistent_partners"),
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


def _inside(run: Path, path: Path) -> Path:
    """`path` resolved; refused when a link leads it out of the run directory."""
    try:
        return run_catalog.resolve_inside(run, path)
    except run_catalog.PathRefused as exc:
        raise DataError(str(exc)) from None


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


def _checked_parquet(run: Path, path: Path, columns: tuple[str, ...] | None = None) -> pl.DataFrame:
    label = path.relative_to(run).as_posix()
    if not path.is_file():
        raise MissingTable(f"{label} is not in this run.")
    try:
        return _read_parquet(str(_inside(run, path)), _stamp(path), columns)
    except _READ_ERRORS as exc:
        raise DataError(f"{label} could not be read: {exc}") from None


def _require(frame: pl.DataFrame, required: Iterable[str], label: str) -> pl.DataFrame:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(f"{label} lacks the columns {missing}; it has {frame.columns}.")
    return frame


def _per_model_to_pairs(frame: pl.DataFrame) -> pl.DataFrame:
    """A table of one model's layer pairs (model, layer_a, layer_b, …) in the pair form (model_a, model_b)."""
    if "model" not in frame.columns or "model_a" in frame.columns:
        return frame
    return frame.with_columns(model_a=pl.col("model"), model_b=pl.col("model")).drop("model")


def table(run: Path, name: str) -> pl.DataFrame:
    """metrics/<name>.parquet in full (the small metric tables; per_sample is only ever scanned)."""
    path = RunPaths(run).metric(name)
    frame = _checked_parquet(run, path)
    if name == "cka":  # written per model (model, layer_a, layer_b, cka) or per pair of models
        frame = _per_model_to_pairs(frame)
    return _require(frame, REQUIRED[name], path.relative_to(run).as_posix())


def _samples_columns(run: Path) -> list[str]:
    """Columns of samples.parquet ([] when absent), read from its footer."""
    path = RunPaths(run).samples
    try:
        return list(pl.scan_parquet(_inside(run, path)).collect_schema().names()) if path.is_file() else []
    except _READ_ERRORS as exc:
        raise DataError(f"samples.parquet could not be read: {exc}") from None


def samples(run: Path) -> pl.DataFrame:
    """sample_id and label of every sample (thumbnails stay on disk until a sample is shown)."""
    keep = tuple(c for c in _samples_columns(run) if c != "thumbnail")
    return _require(_checked_parquet(run, RunPaths(run).samples, keep), ("sample_id",), "samples.parquet")


@st.cache_data(show_spinner=False, max_entries=32)
def _thumbnails(path: str, stamp: tuple[int, int], ids: tuple[int, ...]) -> dict[int, bytes | None]:
    frame = pl.scan_parquet(path).filter(pl.col("sample_id").is_in(ids)).select("sample_id", "thumbnail").collect()
    return dict(zip(frame["sample_id"].to_list(), frame["thumbnail"].to_list()))


def thumbnails(run: Path, ids: Sequence[int]) -> dict[int, bytes | None]:
    """PNG bytes of the given samples; empty when samples.parquet has no thumbnail column."""
    if "thumbnail" not in _samples_columns(run):
        return {}
    path = _inside(run, RunPaths(run).samples)
    try:
        return _thumbnails(str(path), _stamp(path), tuple(sorted(set(ids))))
    except _READ_ERRORS as exc:
        raise DataError(f"thumbnails in samples.parquet could not be read: {exc}") from None


def neighbour_files(run: Path, model: str, layer: str) -> list[Path]:
    """The Parquet parts of one probe point's neighbour table ([] while its search has not finished)."""
    try:
        folder = RunPaths(run).neighbours_dir(model, layer)
    except ValueError as exc:  # a model or layer name from the manifest that is not a safe path part
        raise DataError(str(exc)) from None
    return [_inside(run, part) for part in sorted(folder.glob("*.parquet"))]


@st.cache_data(show_spinner=False, max_entries=64)
def _neighbours(parts: tuple[tuple[str, tuple[str, ...]], ...], sample_id: int, k: int) -> pl.DataFrame:
    scans = [
        pl.scan_parquet(list(files))
        .filter((pl.col("sample_id") == sample_id) & (pl.col("rank") < k))
        .select(pl.lit(layer).alias("layer"), "rank", "neighbour_id", "distance")
        .sort("rank")
        for layer, files in parts
    ]
    return pl.concat(scans).collect()


def neighbours(run: Path, model: str, layers: Sequence[str], sample_id: int, k: int) -> pl.DataFrame:
    """The k nearest neighbours of one sample at each probe point (with parts on disk): only its rows are read."""
    parts = tuple((layer, tuple(map(str, files))) for layer in layers if (files := neighbour_files(run, model, layer)))
    if not parts:
        raise MissingTable(f"No neighbour table of {model} is in this run.")
    try:
        return _neighbours(parts, int(sample_id), int(k))
    except _READ_ERRORS as exc:
        raise DataError(f"the neighbour tables of {model} could not be read: {exc}") from None


@st.cache_data(show_spinner=False, max_entries=32)
def _most_changed(source: str, stamp: tuple[int, int], model: str, k: int, layer_a: str, layer_b: str, n: int) -> pl.DataFrame:
    frame = pl.scan_parquet(source)
    same_model = (pl.col("model") == model) if "model" in frame.collect_schema() else (pl.col("model_a") == model) & (pl.col("model_b") == model)
    pair = ((pl.col("layer_a") == layer_a) & (pl.col("layer_b") == layer_b)) | ((pl.col("layer_a") == layer_b) & (pl.col("layer_b") == layer_a))
    return (
        frame.filter(same_model & (pl.col("k") == k) & pair)
        .select("sample_id", "jaccard")
        .sort("jaccard", "sample_id")
        .head(n)
        .collect()
    )


def most_changed(run: Path, model: str, k: int, layer_a: str, layer_b: str, n: int = 20) -> pl.DataFrame:
    """The n samples whose neighbourhood changes most between two probe points (lowest Jaccard).

    From metrics/most_changed.parquet where it lists the pair (the analysis stage lists consecutive
    probe points), else from a filtered scan of metrics/per_sample.parquet (any pair).
    """
    paths = RunPaths(run)
    sources = [p for p in (paths.metric("most_changed"), paths.metric("per_sample")) if p.is_file()]
    if not sources:
        raise MissingTable("Neither metrics/most_changed.parquet nor metrics/per_sample.parquet is in this run.")
    changed = pl.DataFrame(schema={"sample_id": pl.Int64, "jaccard": pl.Float64})
    for source in sources:
        try:
            changed = _most_changed(str(_inside(run, source)), _stamp(source), model, int(k), layer_a, layer_b, n)
        except _READ_ERRORS as exc:
            raise DataError(f"{source.relative_to(run).as_posix()} could not be read: {exc}") from None
        if not changed.is_empty():
            break
    return changed
