"""Runs: every run below the runs directory, the chosen run's manifest, and several runs side by side."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import polars as pl
import streamlit as st

from dashboard import loaders, report, widgets
from dashboard.figures.runs import stage_timings
from dashboard.run import Run

WEIGHTS = {"trained": "trained here", "trained_cached": "trained here (cached)", "checkpoint": "checkpoint file",
           "pretrained": "pretrained (library weights)", "random_init": "random initialisation"}


# Column widths (px) of the run list: together (900) they fit the wide layout of a 1400 px window (938),
# so no column hides past the right edge; long model lists are cut in the cell (hover shows them whole).
CATALOG_WIDTHS = {"run_dir": 180, "status": 75, "dataset": 65, "models": 165, "n_samples": 80, "k": 60, "size_mb": 65,
                  "seconds_total": 90, "updated": 120}


def catalog_view(catalog: pl.DataFrame) -> pl.DataFrame:
    """The catalog with list columns written out, so it fits the page and exports to CSV (stage details
    are in the chosen run's summary, errors listed under the table)."""
    return catalog.select(
        "run_dir", "status", "dataset",
        pl.col("models").list.join(", "),
        "n_samples",
        pl.col("k").cast(pl.List(pl.String)).list.join(", "),
        (pl.col("size_bytes") / 2**20).round(1).alias("size_mb"),
        pl.col("seconds_total").round(1),
        pl.col("updated").str.slice(0, 16).str.replace("T", " "),
    )


def errors(catalog: pl.DataFrame) -> None:
    """What went wrong with failed and unreadable runs, one line each."""
    for run, status, error in catalog.filter(pl.col("error").is_not_null()).select("run_dir", "status", "error").iter_rows():
        st.caption(f"**{run}** ({status}): {error}")


def models_view(run: Run) -> pl.DataFrame:
    """One row per model: architecture, where its weights came from and its training accuracy, its chain."""
    rows = []
    for name, order in run.orders.items():
        info = run.manifest["models"][name] or {}
        dims = {p.get("layer"): p.get("dim") for p in info.get("probe_points") or []}
        weights = run.weights(name)
        rows.append({"model": name, "arch": info.get("arch"), "weights": WEIGHTS.get(weights.source or "", weights.source),
                     "train_accuracy": weights.train_accuracy, "probe_points": len(order),
                     "chain": " → ".join(order), "dims": ", ".join(str(dims.get(layer, "?")) for layer in order)})
    return pl.DataFrame(rows, schema={"model": pl.String, "arch": pl.String, "weights": pl.String, "train_accuracy": pl.Float64,
                                      "probe_points": pl.Int64, "chain": pl.String, "dims": pl.String})


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
    st.subheader("Models: weights and probe points")
    widgets.show_table(models_view(run), widgets.export_name(run, "models"))
    st.caption("train_accuracy: on the training data, where the model was trained by this tool (none for checkpoints, "
               "library weights or random initialisation).")
    st.subheader("Stages")
    widgets.show_table(run.stages, widgets.export_name(run, "stages"))
    for title, key in (("Conventions", "conventions"), ("Configuration", "config"), ("Versions", "versions")):
        with st.expander(title):
            st.json(manifest.get(key) or {})
    widgets.download("Static HTML report of this run", partial(report.build, run.path, run.name),
                     f"{widgets.export_name(run, 'report')}.html", "text/html")


def compare(names: list[str], current: Run) -> None:
    """The current run beside others: stage timings and the settings that differ. The list is keyed by
    the current run, so switching runs starts a fresh comparison instead of keeping a stale one."""
    st.subheader(f"Compare {current.name} with other runs")
    others = st.multiselect("Other runs", [n for n in names if n != current.name], key=f"compare-{current.name}")
    if not others:
        st.caption("Pick one or more runs to compare configurations and stage timings; the Compare page compares their results.")
        return
    opened = [current]
    for name in others:
        try:
            opened.append(Run.open(loaders.runs_root(), name))
        except loaders.DataError as exc:
            st.error(f"Run {name!r} cannot be compared: {exc}")
    if len(opened) < 2:
        return
    timings = pl.concat([r.stages.with_columns(run=pl.lit(r.name)) for r in opened])
    widgets.show_figure(stage_timings(timings), widgets.export_name(current, "timings"), f"Seconds per stage — runs {', '.join(r.name for r in opened)}")
    widgets.show_table(config_differences(opened), widgets.export_name(current, "config-differences"))


st.title("Runs")
catalog = widgets.runs_catalog()
st.caption(f"{catalog.height} run(s) under {loaders.runs_root()}")
widgets.show_table(catalog_view(catalog), "catalog", CATALOG_WIDTHS)
errors(catalog)
run = widgets.current_run()
run_summary(run)
compare(catalog["run_dir"].to_list(), run)
