"""NNTS: probe point × probe point similarity within one model, several k side by side; per class."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import clickthrough, widgets
from dashboard.figures.similarity import per_class_heatmap
from dashboard.nnts_panel import nnts_section

st.title("NNTS — nearest-neighbour topological similarity")
run = widgets.current_run()
nnts = widgets.page_table(run, "nnts", "NNTS (metrics/nnts.parquet)")
model = widgets.pick("Model", run.models, key="nnts-model", param="model")
nnts_section(run, nnts, model, model, key="nnts")

st.subheader("Per class")
per_class = widgets.metric_table(run, "per_class", "Per-class NNTS (metrics/per_class.parquet)")
if per_class is not None:
    class_ks = sorted(per_class.filter(pl.col("model_a") == model)["k"].unique().to_list())
    class_k = widgets.pick("k", class_ks, key="nnts-class-k")
    stretch = st.session_state.get("nnts-stretch", False)
    name = widgets.export_name(run, "per-class", model, f"k{class_k}")
    event = widgets.show_figure(per_class_heatmap(per_class, model, run.layers(model), class_k, stretch), name,
                                run.title("Mean per-sample Jaccard by class, consecutive probe points", model, class_k), on_select=True)
    st.caption("Click a cell to open the most changed samples of that class and step in Single samples.")
    clickthrough.from_per_class(run, model, class_k, widgets.clicked_point(event))
monotonicity = widgets.metric_table(run, "monotonicity", None)
if monotonicity is not None:
    st.caption("Does NNTS decay with the distance between probe points? Spearman ρ of NNTS against |position a − position b|:")
    widgets.show_table(monotonicity.filter(pl.col("model") == model), widgets.export_name(run, "monotonicity", model))
