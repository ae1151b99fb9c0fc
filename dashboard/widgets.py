"""Streamlit pieces every page shares: the run picker, messages instead of tracebacks, and exports."""

from __future__ import annotations

import io
from functools import partial
from typing import Callable, Sequence, TypeVar

import plotly.graph_objects as go
import polars as pl
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard import figures, loaders
from dashboard.run import Run
from nnts_ray.naming import RunPaths

T = TypeVar("T")
RUN_KEY = "run"
_REFUSED_KEY = "refused_run"


def sidebar_run_picker() -> None:
    """The run every page shows, kept in the URL (?run=…) so a view can be shared or reloaded.

    A ?run= value that is not a run of the catalog (e.g. '../../etc') is refused, never opened.
    """
    try:
        runs = loaders.catalog(str(loaders.runs_root()))["run_dir"].to_list()
    except loaders.DataError:
        return  # the page says what is wrong
    if not runs:
        return
    wanted = st.query_params.get(RUN_KEY)
    if _REFUSED_KEY not in st.session_state:  # said on every page until another run is picked
        st.session_state[_REFUSED_KEY] = wanted if wanted and wanted not in runs else None
    if st.session_state.get(RUN_KEY) not in runs:
        st.session_state[RUN_KEY] = wanted if wanted in runs else runs[0]
    choice = st.sidebar.selectbox("Run", runs, key=RUN_KEY, on_change=st.session_state.update, args=({_REFUSED_KEY: None},))
    st.query_params[RUN_KEY] = choice
    if st.sidebar.button("Refresh runs", help="Scan the runs directory again"):
        loaders.catalog.clear()
        st.rerun()


def runs_catalog() -> pl.DataFrame:
    """The catalog of the runs directory; stops the page with a message when the directory is unusable."""
    try:
        return loaders.catalog(str(loaders.runs_root()))
    except loaders.DataError as exc:
        st.error(str(exc))
        st.stop()


def current_run() -> Run:
    """The run chosen in the sidebar; stops the page with a message when there is none to show."""
    try:
        root = loaders.runs_root()
    except loaders.DataError as exc:
        st.error(str(exc))
        st.stop()
    if refused := st.session_state.get(_REFUSED_KEY):
        st.warning(f"{refused!r} is not a run under the runs directory; it was not opened.")
    name = st.session_state.get(RUN_KEY)
    if name is None:
        st.info(f"No runs under {root} yet. Runs appear here as soon as `nnts-ray` starts writing one (press 'Refresh runs').")
        st.stop()
    try:
        return Run.open(root, name)
    except loaders.DataError as exc:
        st.error(f"Run {name!r} cannot be shown: {exc}")
        st.stop()


def guarded(run: Run, what: str, load: Callable[[], T]) -> T | None:
    """`load()`, or None after an in-page message: info for a table not written, error for a broken one."""
    try:
        return load()
    except loaders.MissingTable:
        st.info(run.pending(what))
    except loaders.DataError as exc:
        st.error(str(exc))
    return None


def metric_table(run: Run, name: str, what: str | None) -> pl.DataFrame | None:
    """metrics/<name>.parquet or None; with what=None a missing table is an optional extra, not mentioned."""
    if what is None and not RunPaths(run.path).metric(name).is_file():
        return None
    return guarded(run, what or name, partial(loaders.table, run.path, name))


def page_table(run: Run, name: str, what: str) -> pl.DataFrame:
    """metrics/<name>.parquet for a page that shows nothing without it: stops the page after the message."""
    frame = metric_table(run, name, what)
    if frame is None:
        st.stop()
    return frame


def pick(label: str, options: Sequence[T], key: str, index: int = 0, format_func: Callable[[T], str] = str) -> T:
    """A select box that survives option lists changing between runs; stops the page when there is no option."""
    if not options:
        st.info(f"{label}: nothing to choose from in this run yet.")
        st.stop()
    if st.session_state.get(key) not in options:
        st.session_state.pop(key, None)
    return st.selectbox(label, list(options), index=min(index, len(options) - 1), key=key, format_func=format_func)


def nnts_section(run: Run, nnts: pl.DataFrame, model_a: str, model_b: str, key: str) -> None:
    """Heatmaps of NNTS between the probe points of model_a (rows) and model_b (columns), with controls."""
    pairs = ((pl.col("model_a") == model_a) & (pl.col("model_b") == model_b)) | ((pl.col("model_a") == model_b) & (pl.col("model_b") == model_a))
    ks = sorted(nnts.filter(pairs)["k"].unique().to_list())
    if not ks:
        st.info(run.pending(f"NNTS of {model_a} against {model_b}"))
        return
    left, middle, right = st.columns([2, 1, 1])
    chosen = sorted(left.multiselect("k (side by side)", ks, default=ks, key=f"{key}-k"))
    form = middle.radio("Form", figures.FORMS, horizontal=True, key=f"{key}-form")
    relative = right.radio("Scale", ("raw", "relative to chance"), horizontal=True, key=f"{key}-scale") != "raw"
    if not chosen:
        st.info("Pick at least one k.")
        return
    null = metric_table(run, "nnts_null", None)
    fig = figures.nnts_heatmaps(nnts, model_a, run.layers(model_a), model_b, run.layers(model_b), chosen, form, relative, null)
    name = export_name(run, key, model_a, model_b)
    show_figure(fig, name)
    if null is None:
        st.caption("Permutation null (metrics/nnts_null.parquet): not computed in this run; the hover shows the analytic chance level.")
    rows = nnts.filter(pairs & pl.col("k").is_in(chosen))
    st.dataframe(rows, hide_index=True)
    export_table(rows, name)


def _parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def download(label: str, make: Callable[[], str | bytes], file_name: str, mime: str, where: DeltaGenerator | None = None, help: str | None = None) -> None:
    """A download whose file is built only when clicked; no rerun on click, which would retire the
    other buttons' pending files (a second download would then fail)."""
    (where or st).download_button(label, data=make, file_name=file_name, mime=mime, key=f"download-{file_name}", on_click="ignore", help=help)


def export_table(frame: pl.DataFrame, name: str) -> None:
    """CSV and Parquet downloads of `frame`."""
    row = st.container(horizontal=True)
    download("Table as CSV", partial(frame.write_csv), f"{name}.csv", "text/csv", row)
    download("Table as Parquet", partial(_parquet_bytes, frame), f"{name}.parquet", "application/octet-stream", row)


def show_figure(fig: go.Figure, name: str) -> None:
    """The chart, its PNG through the toolbar's camera button, and a standalone HTML download."""
    config = {"toImageButtonOptions": {"format": "png", "filename": name, "scale": 2}, "displaylogo": False}
    st.plotly_chart(fig, config=config, key=f"fig-{name}")
    download("Figure as HTML", partial(fig.to_html, include_plotlyjs=True, full_html=True), f"{name}.html", "text/html",
             help="PNG: use the camera button in the figure's toolbar")


def export_name(run: Run, *parts: object) -> str:
    """A file name for downloads: run and view, without path separators."""
    return "-".join([run.name.replace("/", "_"), *(str(p) for p in parts)])
