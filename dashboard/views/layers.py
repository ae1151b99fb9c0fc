"""Per layer: statistics of each probe point (intrinsic dimension, label agreement, …) and CKA beside NNTS."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import figures, widgets

st.title("Per layer")
run = widgets.current_run()
model = widgets.pick("Model", run.models, key="layers-model")
order = run.layers(model)

layers = widgets.metric_table(run, "layers", "Per-layer statistics (metrics/layers.parquet)")
if layers is not None:
    layers = layers.filter(pl.col("model") == model).sort("position")
    stats = figures.layer_statistics(layers)
    if not (default := figures.default_statistics(stats)):
        st.info(run.pending("Per-layer statistics (intrinsic dimension, label agreement)"))
    chosen = st.multiselect("Statistics", stats, default=default, key="layers-stats")
    if chosen:
        widgets.show_figure(figures.layer_stats_figure(layers, order, chosen), widgets.export_name(run, "layers", model))
    st.dataframe(layers, hide_index=True)
    widgets.export_table(layers, widgets.export_name(run, "layers", model))

st.subheader("Linear CKA beside NNTS")
nnts = widgets.metric_table(run, "nnts", "NNTS (metrics/nnts.parquet)")
ks = sorted(nnts.filter(pl.col("model_a") == model)["k"].unique().to_list()) if nnts is not None else []
k = widgets.pick("NNTS at k", ks, key="layers-k") if ks else None
left, right = st.columns(2)
with left:
    cka = widgets.metric_table(run, "cka", "Linear CKA (metrics/cka.parquet)")
    if cka is not None:
        widgets.show_figure(figures.cka_heatmap(cka, model, order, model, order), widgets.export_name(run, "cka", model))
        widgets.export_table(figures.oriented(cka, model, model), widgets.export_name(run, "cka", model))
with right:
    if k is not None:
        widgets.show_figure(figures.nnts_heatmaps(nnts, model, order, model, order, [k]), widgets.export_name(run, "nnts", model, f"k{k}"))
