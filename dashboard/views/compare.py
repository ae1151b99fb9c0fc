"""Compare results across runs: NNTS along the chain of two or more (run, model) overlaid, and the
difference b − a of two NNTS matrices — two runs, two models of a sweep, or two training checkpoints."""

from __future__ import annotations

import numpy as np
import polars as pl
import streamlit as st

from dashboard import loaders, widgets
from dashboard.figures.base import oriented, pair_matrix
from dashboard.figures.similarity import CONSECUTIVE, FORMS, FROM_INPUT, TO_OUTPUT, depth_curves, depth_profile, difference_heatmap, nnts_value
from dashboard.nnts_panel import SCALES
from dashboard.run import Run
from nnts_ray.catalog import UNREADABLE

SEPARATOR = " · "  # between run and model in an entry


def entries(catalog: pl.DataFrame) -> list[str]:
    """Every (run, model) that can be compared, as 'run · model'."""
    readable = catalog.filter(pl.col("status") != UNREADABLE)
    return [f"{run}{SEPARATOR}{model}" for run, models in readable.select("run_dir", "models").iter_rows() for model in models or []]


def default_entries(current: Run, options: list[str]) -> list[str]:
    """First and last model of the current run (a sweep, or training checkpoints), else its model beside
    the same model in the next run that has it, else the next run's first model."""
    mine = [f"{current.name}{SEPARATOR}{m}" for m in current.models]
    if len(mine) >= 2:
        return [mine[0], mine[-1]]
    others = [o for o in options if not o.startswith(f"{current.name}{SEPARATOR}")]
    same = [o for o in others if mine and o.endswith(f"{SEPARATOR}{current.models[0]}")]
    return [*mine, *(same or others)[:1]]


def _open(chosen: list[str]) -> dict[str, tuple[Run, str, pl.DataFrame]]:
    """Each entry's run, model and NNTS table; entries that cannot be read are reported and left out."""
    opened = {}
    for entry in chosen:
        name, model = entry.rsplit(SEPARATOR, 1)
        try:
            run = Run.open(loaders.runs_root(), name)
            opened[entry] = (run, model, loaders.table(run.path, "nnts"))
        except loaders.MissingTable:
            st.info(f"{entry}: NNTS (metrics/nnts.parquet) is not in this run.")
        except loaders.DataError as exc:
            st.error(f"{entry} cannot be compared: {exc}")
    return opened


def _sizes(opened: dict[str, tuple[Run, str, pl.DataFrame]]) -> str:
    return "; ".join(f"{entry} (n = {run.n_samples:,})" if run.n_samples else entry for entry, (run, _, _) in opened.items())


st.title("Compare results across runs")
catalog = widgets.runs_catalog()
current = widgets.current_run()
options = entries(catalog)
chosen = widgets.pick_many("Runs and models to compare (two or more)", options, key="compare-entries", param="compare",
                           default=default_entries(current, options))
opened = _open(chosen)
if len(opened) < 2:
    st.info("Pick two or more runs or models (e.g. two models of a sweep, or two checkpoints of experiment=training_dynamics).")
    st.stop()
common = sorted(set.intersection(*(set(nnts.filter((pl.col("model_a") == m) & (pl.col("model_b") == m))["k"].to_list()) for _, m, nnts in opened.values())))
if not common:
    st.info("The chosen runs have no k in common: " + "; ".join(f"{e}: k = {r.k}" for e, (r, _, _) in opened.items()))
    st.stop()
k_col, form_col, scale_col = st.columns([1, 1, 1])
k = widgets.pick("k", common, key="compare-k", param="k", where=k_col)
form = widgets.pick_radio("Form", FORMS, key="compare-form", param="form", where=form_col)
relative = widgets.pick_radio("Scale", SCALES, key="compare-scale", param="scale", where=scale_col) != SCALES[0]
value = f"{form} / chance" if relative else form
if len({run.n_samples for run, _, _ in opened.values()}) > 1 and not relative:
    st.warning("The runs hold different numbers of samples, so their chance levels differ too: compare them relative to chance.")

st.subheader("NNTS along the chain")
reference = widgets.pick_radio("Each probe point against", (FROM_INPUT, CONSECUTIVE, TO_OUTPUT), key="compare-reference")
tables = {entry: nnts.with_columns(nnts_value(form, relative)) for entry, (_, _, nnts) in opened.items()}
profiles = [(entry, run.layers(model), depth_profile(tables[entry], model, run.layers(model), k, "value", reference))
            for entry, (run, model, _) in opened.items()]
widgets.show_figure(depth_curves(profiles, value, reference), widgets.export_name(current, "compare-depth", f"k{k}"),
                    f"NNTS ({value}) {reference} — k = {k}<br>{_sizes(opened)}")
widgets.show_table(pl.concat([p.with_columns(entry=pl.lit(e)) for e, _, p in profiles]).select("entry", "position", "layer", "value"),
                   widgets.export_name(current, "compare-depth", f"k{k}"))

st.subheader("Difference of two NNTS matrices (b − a)")
left, right = st.columns(2)
entry_a = widgets.pick("a", list(opened), key="compare-a", where=left)
entry_b = widgets.pick("b", list(opened), key="compare-b", default=list(opened)[1], where=right)
(run_a, model_a, _), (run_b, model_b, _) = opened[entry_a], opened[entry_b]
shared = [layer for layer in run_a.layers(model_a) if layer in set(run_b.layers(model_b))]
if not shared:
    st.info(f"{entry_a} and {entry_b} have no probe points of the same name: their matrices cannot be subtracted cell by cell.")
    st.stop()
a = pair_matrix(oriented(tables[entry_a].filter(pl.col("k") == k), model_a, model_a), "value", shared, shared)
b = pair_matrix(oriented(tables[entry_b].filter(pl.col("k") == k), model_b, model_b), "value", shared, shared)
name = widgets.export_name(current, "compare-difference", f"k{k}")
widgets.show_figure(difference_heatmap(a, b, shared, entry_a, entry_b, value), name,
                    f"NNTS difference b − a ({value}) — k = {k}<br>a: {_sizes({entry_a: opened[entry_a]})}; b: {_sizes({entry_b: opened[entry_b]})}")
if np.nanmax(np.abs(b - a), initial=0.0) == 0:
    st.info(f"{entry_a} and {entry_b} have the same NNTS at every pair of probe points (k = {k}).")
st.caption("Red: b more similar than a at that pair of probe points; blue: less. The scale is symmetric about 0; grey cells: not in both tables.")
rows = [(la, lb, a[i, j], b[i, j], b[i, j] - a[i, j]) for i, la in enumerate(shared) for j, lb in enumerate(shared) if np.isfinite(a[i, j]) or np.isfinite(b[i, j])]
widgets.show_table(pl.DataFrame(rows, schema={"layer_a": pl.String, "layer_b": pl.String, "a": pl.Float64, "b": pl.Float64, "b_minus_a": pl.Float64}, orient="row"), name)
