"""Every read of the dashboard: the catalog and a run's tables, cached while the server runs.

Reads are keyed on the file's (mtime, size), so a table a running stage rewrites is read again while
unchanged tables come from the cache. Large tables (per-sample values, neighbours, thumbnails) are
scanned with filters, never loaded whole. Nothing here reads outside the runs root: every run path goes
through `nnts_ray.catalog.resolve_inside`, and names become paths only through `nnts_ray.naming`.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import polars as pl
import pyarrow as pa
import streamlit as st
from streamlit import runtime

from dashboard import RUNS_ENV
from nnts_ray import catalog as run_catalog
from nnts_ray import schemas
from nnts_ray.naming import RunPaths

# The schema of each metric table the dashboard reads (nnts_ray.schemas is their one home); a table
# must hold at least these columns (layers.parquet adds per-layer statistics).
TABLES: dict[str, pa.Schema] = {
    "nnts": schemas.NNTS, "nntp": schemas.NNTP, "per_sample": schemas.PER_SAMPLE, "layers": schemas.LAYERS,
    "cka": schemas.CKA, "nnts_null": schemas.NNTS_NULL, "per_class": schemas.PER_CLASS, "most_changed": schemas.MOST_CHANGED,
    "monotonicity": schemas.MONOTONICITY, "nntp_partners": schemas.NNTP_PARTNERS, "embedding": schemas.EMBEDDING,
}
_READ_ERRORS = (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError, ValueError)
F = TypeVar("F", bound=Callable[..., Any])


def cached(**options: Any) -> Callable[[F], F]:
    """st.cache_data while the Streamlit server runs; a plain call elsewhere (the report command), where
    Streamlit has no cache storage and would log "No runtime found" once per cached function."""
    def decorate(read: F) -> F:
        cache: Any = None

        @functools.wraps(read)
        def call(*args: Any) -> Any:
            nonlocal cache
            if not runtime.exists():
                return read(*args)
            if cache is None:
                cache = st.cache_data(show_spinner=False, **options)(read)
            return cache(*args)

        call.clear = lambda: cache.clear() if cache is not None else None  # type: ignore[attr-defined]
        return call  # type: ignore[return-value]
    return decorate


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


@cached(ttl=10)
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


def _stamp(path: Path, follow: bool = True) -> tuple[int, int]:
    """(mtime, size): the `stamp` argument of a cached reader only keys the cache, so rewrites are seen."""
    stat = path.stat() if follow else path.lstat()
    return stat.st_mtime_ns, stat.st_size


def _inside(run: Path, path: Path) -> Path:
    """`path` resolved; refused when a link leads it out of the run directory."""
    try:
        return run_catalog.resolve_inside(run, path)
    except run_catalog.PathRefused as exc:
        raise DataError(str(exc)) from None


@cached(max_entries=16)
def _read_manifest(run: str, stamp: tuple[int, int]) -> dict[str, Any]:
    return run_catalog.read_manifest(Path(run))


def manifest(run: Path) -> dict[str, Any]:
    """The run's checked manifest (as the catalog reads it: a link out of the run is refused)."""
    try:
        return _read_manifest(str(run), _stamp(RunPaths(run).manifest, follow=False))
    except (OSError, run_catalog.ManifestError) as exc:
        message = str(exc).removeprefix(f"{run_catalog.MANIFEST}: ")
        raise DataError(f"manifest.json could not be read: {message}") from None


@cached(max_entries=64)
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


def _require(frame: pl.DataFrame | list[str], required: Sequence[str], label: str) -> pl.DataFrame | list[str]:
    """`frame` (a table or its column names) when it holds every required column, else DataError."""
    columns = frame if isinstance(frame, list) else frame.columns
    if missing := [c for c in required if c not in columns]:
        raise DataError(f"{label} lacks the columns {missing}; it has {columns}.")
    return frame


def table(run: Path, name: str) -> pl.DataFrame:
    """metrics/<name>.parquet in full (the small metric tables; per_sample is only ever scanned)."""
    path = RunPaths(run).metric(name)
    return _require(_checked_parquet(run, path), TABLES[name].names, path.relative_to(run).as_posix())


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


@cached(max_entries=32)
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


@cached(max_entries=64)
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


@cached(max_entries=32)
def _pair_values(source: str, stamp: tuple[int, int], model: str, k: int, layer_a: str, layer_b: str) -> pl.DataFrame:
    frame = pl.scan_parquet(source)
    same_model = (pl.col("model") == model) if "model" in frame.collect_schema() else (pl.col("model_a") == model) & (pl.col("model_b") == model)
    pair = ((pl.col("layer_a") == layer_a) & (pl.col("layer_b") == layer_b)) | ((pl.col("layer_a") == layer_b) & (pl.col("layer_b") == layer_a))
    return frame.filter(same_model & (pl.col("k") == k) & pair).select("sample_id", "jaccard").sort("jaccard", "sample_id").collect()


def pair_values(run: Path, model: str, k: int, layer_a: str, layer_b: str) -> tuple[pl.DataFrame, bool]:
    """Per-sample Jaccard of one model between two probe points at k, lowest first, and whether it is
    every sample (metrics/per_sample.parquet) or only the most changed ones (metrics/most_changed.parquet,
    consecutive probe points only). Empty when neither table holds the pair."""
    paths = RunPaths(run)
    sources = [(p, every) for p, every in ((paths.metric("per_sample"), True), (paths.metric("most_changed"), False)) if p.is_file()]
    if not sources:
        raise MissingTable("Neither metrics/per_sample.parquet nor metrics/most_changed.parquet is in this run.")
    for source, every in sources:
        try:
            values = _pair_values(str(_inside(run, source)), _stamp(source), model, int(k), layer_a, layer_b)
        except _READ_ERRORS as exc:
            raise DataError(f"{source.relative_to(run).as_posix()} could not be read: {exc}") from None
        if not values.is_empty():
            return values, every
    return values, False


@cached(max_entries=8)
def _embedding(path: str, stamp: tuple[int, int], model: str) -> pl.DataFrame:
    return pl.scan_parquet(path).filter(pl.col("model") == model).select("layer", "sample_id", "x", "y").collect()


def embedding(run: Path, model: str) -> pl.DataFrame:
    """The 2-D PCA map of every probe point of `model` (layer, sample_id, x, y) from metrics/embedding.parquet."""
    path = RunPaths(run).metric("embedding")
    if not path.is_file():
        raise MissingTable("metrics/embedding.parquet is not in this run.")
    label = path.relative_to(run).as_posix()
    try:
        source = str(_inside(run, path))
        _require(pl.scan_parquet(source).collect_schema().names(), TABLES["embedding"].names, label)
        return _embedding(source, _stamp(path), model)
    except _READ_ERRORS as exc:
        raise DataError(f"{label} could not be read: {exc}") from None
