"""Streamlit pieces every page shares: the run picker, choices kept in the URL, messages instead of
tracebacks, figures with titles, tables with exports."""

from __future__ import annotations

import io
from functools import partial
from typing import Any, Callable, Sequence, TypeVar

import plotly.graph_objects as go
import polars as pl
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard import loaders
from dashboard.figures.base import titled
from dashboard.run import Run
from nnts_ray.catalog import UNREADABLE
from nnts_ray.naming import RunPaths

T = TypeVar("T")
RUN_KEY = "run"
_REFUSED_KEY = "refused_run"


def opening_run(catalog: pl.DataFrame) -> str:
    """The run shown when the URL names none: the newest complete run, else the newest readable one."""
    complete = catalog.filter(pl.col("status") == "complete")["run_dir"]
    readable = catalog.filter(pl.col("status") != UNREADABLE)["run_dir"]
    return next(iter([*complete, *readable, *catalog["run_dir"]]))


def sidebar_run_picker() -> None:
    """The run every page shows, kept in the URL (?run=…) so a view can be shared or reloaded.

    A ?run= value that is not a run of the catalog (e.g. '../../etc') is refused, never opened.
    """
    try:
        catalog = loaders.catalog(str(loaders.runs_root()))
    except loaders.DataError:
        return  # the page says what is wrong
    runs = catalog["run_dir"].to_list()
    if not runs:
        return
    wanted = st.query_params.get(RUN_KEY)
    if _REFUSED_KEY not in st.session_state:  # said on every page until another run is picked
        st.session_state[_REFUSED_KEY] = wanted if wanted and wanted not in runs else None
    if st.session_state.get(RUN_KEY) not in runs:
        st.session_state[RUN_KEY] = wanted if wanted in runs else opening_run(catalog)
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


# Choices kept in the URL: on the first script run of a page visit (a shared link, a reload, a
# click-through) widgets start from ?param= where it names one of their options; every run writes the
# choices back. Later runs of the same visit never read the URL: it only echoes what is on screen.
_PAGE_KEY, _FRESH_KEY = "_page", "_fresh_visit"


def page_visit(page: str) -> None:
    """Called by app.py before every page run: notes whether this run opens the page (URL is read) or not."""
    st.session_state[_FRESH_KEY] = st.session_state.get(_PAGE_KEY) != page
    st.session_state[_PAGE_KEY] = page


def url_value(param: str | None) -> str | None:
    """?param= on the first run of a page visit, else None."""
    return st.query_params.get(param) if param and st.session_state.get(_FRESH_KEY, True) else None


def _from_url(param: str | None, options: Sequence[T]) -> T | None:
    raw = url_value(param)
    return next((o for o in options if str(o) == raw), None)


def _prepare(key: str, options: Sequence[T], param: str | None, default: T | None) -> None:
    """Give widget `key` a valid value before it is drawn (from the URL, else `default`, else the first
    option), so it never keeps a value from another run or another k. Widgets then get no index of their
    own, which would clash with the value set here."""
    if st.session_state.get(key) not in options:
        url = _from_url(param, options)
        st.session_state[key] = url if url is not None else default if default in options else options[0]


def remember(param: str, value: object) -> None:
    """Write a choice to the URL: lists as comma-separated values."""
    st.query_params[param] = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def pick(label: str, options: Sequence[T], key: str, param: str | None = None, default: T | None = None,
         format_func: Callable[[T], str] = str, where: Any = st, **kwargs: Any) -> T:
    """A select box that survives option lists changing between runs; stops the page when there is no option."""
    if not options:
        st.info(f"{label}: nothing to choose from in this run yet.")
        st.stop()
    return _drawn(where.selectbox, label, options, key, param, default, format_func=format_func, **kwargs)


def pick_radio(label: str, options: Sequence[T], key: str, param: str | None = None, where: Any = st, **kwargs: Any) -> T:
    return _drawn(where.radio, label, options, key, param, None, horizontal=True, **kwargs)


def _drawn(draw: Callable[..., T], label: str, options: Sequence[T], key: str, param: str | None, default: T | None, **kwargs: Any) -> T:
    """One choice drawn by `draw` (a select box or radio buttons), valid before drawing and written to the URL."""
    _prepare(key, options, param, default)
    value = draw(label, list(options), key=key, **kwargs)
    if param:
        remember(param, value)
    return value


def pick_many(label: str, options: Sequence[T], key: str, param: str | None = None, default: Sequence[T] | None = None,
              where: Any = st) -> list[T]:
    """A multiselect of several options (`default`, else all), kept in the URL as a comma-separated list."""
    current = st.session_state.get(key)
    if current is None or any(v not in options for v in current):
        raw = (url_value(param) or "").split(",")
        from_url = [o for o in options if str(o) in raw]
        st.session_state[key] = from_url or [o for o in (default or options) if o in options]
    selected = where.multiselect(label, list(options), key=key)
    chosen = [o for o in options if o in selected]  # in option order, whatever the order of clicks
    if param:
        remember(param, chosen)
    return chosen


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


def show_table(frame: pl.DataFrame, name: str, widths: dict[str, int] | None = None) -> None:
    """A table with its CSV and Parquet downloads; p-values in scientific notation (2.4e-25, not 0.000…);
    `widths` in pixels for columns that would otherwise push the table past the page."""
    config: dict[str, Any] = {c: st.column_config.NumberColumn(c, format="%.2e") for c in frame.columns if c.startswith("p_value")}
    config |= {c: st.column_config.Column(c, width=w) for c, w in (widths or {}).items()}
    st.dataframe(frame, hide_index=True, column_config=config or None)
    export_table(frame, name)


def show_figure(fig: go.Figure, name: str, title: str, on_select: bool = False) -> Any:
    """The chart with its title (which PNG and HTML exports keep), a PNG through the toolbar's camera button,
    and a standalone HTML download. With on_select, returns the chart's click selection."""
    titled(fig, title)
    config = {"toImageButtonOptions": {"format": "png", "filename": name, "scale": 2}, "displaylogo": False}
    select = {"on_select": "rerun", "selection_mode": "points"} if on_select else {}
    event = st.plotly_chart(fig, config=config, key=f"fig-{name}", **select)
    download("Figure as HTML", partial(fig.to_html, include_plotlyjs=True, full_html=True), f"{name}.html", "text/html",
             help="PNG: use the camera button in the figure's toolbar")
    return event


def clicked_point(event: Any) -> dict[str, Any] | None:
    """The point clicked in a chart drawn with on_select (None before any click)."""
    points = (getattr(event, "selection", None) or {}).get("points") or []
    return points[0] if points else None


def export_name(run: Run, *parts: object) -> str:
    """A file name for downloads: run and view, without path separators."""
    return "-".join([run.name.replace("/", "_"), *(str(p) for p in parts)])
