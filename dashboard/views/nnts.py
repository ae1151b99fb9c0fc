"""NNTS: probe point × probe point similarity within one model, several k side by side."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import figures, widgets

st.title("NNTS — nearest-neighbour topological similarity")
run = widgets.current_run()
nnts = widgets.page_table(run, "nnts", "NNTS (metrics/nnts.parquet)")
model = widgets.pick("Model", run.models, key="nnts-model")
widgets.nnts_section(run, nnts, model, model, key="nnts")

st.subheader("Per class")
per_class = widgets.metric_table(run, "per_class", "Per-class NNTS (metrics/per_class.parquet)")
if per_class is not None:
    class_ks = sorted(per_class.filter(pl.col("model_a") == model)["k"].unique().to_list())
    class_k = widgets.pick("k", class_ks, key="nnts-class-k")
    widgets.show_figure(figures.per_class_heatmap(per_class, model, run.layers(model), class_k), widgets.export_name(run, "per-class", model, f"k{class_k}"))
monotonicity = widgets.metric_table(run, "monotonicity", None)
if monotonicity is not None:
    st.caption("Does NNTS decay with the distance between probe points? Spearman ρ of NNTS against |position a − position b|:")
    monotonicity = monotonicity.filter(pl.col("model") == model)
    st.dataframe(monotonicity, hide_index=True)
    widgets.export_table(monotonicity, widgets.export_name(run, "monotonicity", model))
