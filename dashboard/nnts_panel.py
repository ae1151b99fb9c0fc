"""The NNTS heatmaps with their controls, as the NNTS page (one model) and Across models (two) show them."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import widgets
from dashboard.figures.similarity import FORMS, SHOW_NNTS, SHOW_P, SHOW_Z, Style, nnts_heatmaps
from dashboard.run import Run

SCALES = ("raw", "relative to chance")
GREY_OFF = "no"
GREY_LEVELS = (GREY_OFF, "where p ≥ 0.05", "where p ≥ 0.01", "where p ≥ 0.001")


def _title(style: Style) -> str:
    return {SHOW_NNTS: f"NNTS ({style.label})", SHOW_Z: "NNTS: z vs permutation null", SHOW_P: "NNTS: p-value (permutation)"}[style.show]


def _null_controls(key: str) -> tuple[str, float | None]:
    """What to show of the permutation null, and the p at or above which cells are greyed out."""
    show_col, grey_col = st.columns([2, 1])
    show = widgets.pick_radio("Show", (SHOW_NNTS, SHOW_Z, SHOW_P), f"{key}-show", param="show", where=show_col)
    grey = widgets.pick("Grey out cells not above the null", GREY_LEVELS, f"{key}-grey", param="grey", where=grey_col,
                        help="Grey: the permutation test does not put the cell above the null at this level")
    return show, None if grey == GREY_OFF else float(grey.rsplit(" ", 1)[1])


def _null_notes(null: pl.DataFrame, show: str, level: float | None) -> None:
    """How to read the null views, and when every p sits at the floor the permutations allow."""
    if show == SHOW_Z:
        st.caption("z: (NNTS − null mean) / null std, one colour axis per k; light grey cells had no test (the diagonal).")
    if level is not None:
        st.caption(f"Dark grey: p ≥ {level} under the permutation null (not above it). Cells without a test (diagonal, k above "
                   "metrics.null_max_k) are never greyed.")
    floor = null.select((pl.col("p_value") <= 1 / (pl.col("permutations") + 1) * (1 + 1e-9)).all()).item()
    if show != SHOW_NNTS and null.height and floor:
        smallest = float((1 / (null["permutations"] + 1)).max())
        st.caption(f"Every p shown is the smallest {null['permutations'].max()} permutations can give ({smallest:.1e}): "
                   "more permutations (metrics.permutations) would tell the cells apart.")


def nnts_section(run: Run, nnts: pl.DataFrame, model_a: str, model_b: str, key: str) -> None:
    """Heatmaps of NNTS between the probe points of model_a (rows) and model_b (columns), with controls."""
    pairs = ((pl.col("model_a") == model_a) & (pl.col("model_b") == model_b)) | ((pl.col("model_a") == model_b) & (pl.col("model_b") == model_a))
    ks = sorted(nnts.filter(pairs)["k"].unique().to_list())
    if not ks:
        st.info(run.pending(f"NNTS of {model_a} against {model_b}"))
        return
    left, middle, right = st.columns([2, 1, 1])
    chosen = widgets.pick_many("k (side by side)", ks, f"{key}-k", param="k", where=left)
    form = widgets.pick_radio("Form", FORMS, f"{key}-form", param="form", where=middle)
    relative = widgets.pick_radio("Scale", SCALES, f"{key}-scale", param="scale", where=right) != SCALES[0]
    null = widgets.metric_table(run, "nnts_null", None)
    show, level = _null_controls(key) if null is not None else (SHOW_NNTS, None)
    stretch = st.toggle("Stretch colours to the data", key=f"{key}-stretch", disabled=relative or show != SHOW_NNTS,
                        help="Off: Jaccard and overlap on a fixed 0–1 scale for every panel, like the paper's figure and CKA. "
                             "Relative values and z-scores always get one colour axis per k.")
    if not chosen:
        st.info("Pick at least one k.")
        return
    style = Style(form=form, relative=relative, stretch=stretch, show=show, grey_level=level)
    fig = nnts_heatmaps(nnts, model_a, run.layers(model_a), model_b, run.layers(model_b), chosen, style, null)
    name = widgets.export_name(run, key, model_a, model_b)
    models = model_a if model_a == model_b else f"{model_a} (rows) × {model_b} (columns)"
    widgets.show_figure(fig, name, run.title(_title(style), models, ", ".join(map(str, chosen))))
    if style.per_panel:
        st.caption("One colour axis per k: chance levels and z-scores differ by k, so colours compare within a panel, not across.")
    if null is None:
        st.caption("Permutation null (metrics/nnts_null.parquet): not computed in this run; the hover shows the analytic chance level.")
    else:
        _null_notes(null.filter(pairs & pl.col("k").is_in(chosen)), show, level)
    widgets.show_table(nnts.filter(pairs & pl.col("k").is_in(chosen)), name)
    if null is not None:
        st.caption("Permutation null of the cells shown (one-sided p, at least 1 / (permutations + 1)):")
        widgets.show_table(null.filter(pairs & pl.col("k").is_in(chosen)), f"{name}-null")
