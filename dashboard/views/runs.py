"""Runs: every run below the runs directory, the chosen run's manifest, and several runs side by side."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import polars as pl
import streamlit as st

from dashboard import figures, loaders, report, widgets
from dashboard.run import Run


def catalog_view(catalog: pl.DataFrame) -> pl.DataFrame:
    """The catalog with list columns written out, so it shows compactly and exports to CSV."""
    stage = pl.element().struct
    return catalog.select(
        "run_dir", "status", "dataset",
        pl.col("models").list.join(", "),
        "n_samples",
        pl.col("k").cast(pl.List(pl.String)).list.join(", "),
        (pl.col("size_bytes") / 2**20).round(2).alias("size_mb"),
        pl.col("seconds_total").round(1),
        pl.col("stages").list.eval(pl.format("{} {}s", stage.field("stage"), stage.field("seconds").round(1))).list.join(", "),
        "created", "updated", "error",
    )


def models_view(run: Run) -> pl.DataFrame:
    rows = []
    for name, order in run.orders.items():
        info = run.manifest["models"][name] or {}
        dims = {p.get("layer"): p.get("dim") for p in info.get("probe_points") or []}
        rows.append({"model": name, "arch": info.get("arch"), "probe_points": len(order),
                     "chain": " → ".join(order), "dims": ", ".join(str(dims.get(layer, "?")) for layer in order)})
    return pl.DataFrame(rows, schema={"model": pl.String, "arch": pl.String, "probe_points": pl.Int64, "chain": pl.String, "dims": pl.String})


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested config as dotted keys, for a side-by-side comparison."""
    if isinstance(value, dict):
        return {k: v for key, sub in value.items() for k, v in flatten(sub, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): json.dumps(value)}


def config_differences(runs: list[Run]) -> pl.DataFrame:
    configs = [flatten(run.manifest.get("config") or {}) for run in runs]
    keys = sorted({key for config in configs for key in config if len({c.get(key) for c in configs}) > 1})
    return pl.DataFrame({"setting": keys, **{run.name: [c.get(key) for key in keys] for run, c in zip(runs, configs)}}, schema_overrides={"setting": pl.String})


def run_summary(run: Run) -> None:
    manifest = run.manifest
    st.header(run.name)
    if run.status == "failed":
        st.error(f"This run failed: {manifest.get('error') or 'no error message recorded'}")
    elif run.running:
        done = run.stages.filter(status="complete")["stage"].to_list()
        st.info(f"This run is still in progress; stages finished so far: {', '.join(done) or 'none'}. Press 'Refresh runs' to update.")
    cols = st.columns(4)
    cols[0].metric("Status", run.status)
    cols[1].metric("Samples", manifest.get("n_samples") or "—")
    cols[2].metric("k", ", ".join(map(str, run.k)) or "—")
    cols[3].metric("Models", len(run.models))
    st.subheader("Models and probe points")
    models = models_view(run)
    st.dataframe(models, hide_index=True)
    widgets.export_table(models, widgets.export_name(run, "models"))
    st.subheader("Stages")
    st.dataframe(run.stages, hide_index=True)
    widgets.export_table(run.stages, widgets.export_name(run, "stages"))
    for title, key in (("Conventions", "conventions"), ("Configuration", "config"), ("Versions", "versions")):
        with st.expander(title):
            st.json(manifest.get(key) or {})
    widgets.download("Static HTML report of this run", partial(report.build, run.path, run.name),
                     f"{widgets.export_name(run, 'report')}.html", "text/html")


def compare(names: list[str], current: Run) -> None:
    st.subheader("Compare runs")
    chosen = st.multiselect("Runs", names, default=[current.name], key="compare")
    if len(chosen) < 2:
        st.caption("Pick two or more runs to compare their configurations and stage timings.")
        return
    opened = []
    for name in chosen:
        try:
            opened.append(Run.open(loaders.runs_root(), name))
        except loaders.DataError as exc:
            st.error(f"Run {name!r} cannot be compared: {exc}")
    if len(opened) < 2:
        return
    timings = pl.concat([r.stages.with_columns(run=pl.lit(r.name)) for r in opened])
    widgets.show_figure(figures.stage_timings(timings), widgets.export_name(current, "timings"))
    differences = config_differences(opened)
    st.dataframe(differences, hide_index=True)
    widgets.export_table(differences, widgets.export_name(current, "config-differences"))


st.title("Runs")
catalog = widgets.runs_catalog()
st.caption(f"{catalog.height} run(s) under {loaders.runs_root()}")
listing = catalog_view(catalog)
st.dataframe(listing, hide_index=True)
widgets.export_table(listing, "catalog")
run = widgets.current_run()
run_summary(run)
compare(catalog["run_dir"].to_list(), run)
