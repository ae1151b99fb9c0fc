"""NNTP: how long neighbour pairs stay connected along the chain (start × end run counts, survival)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import figures, widgets

st.title("NNTP — nearest-neighbour topological persistence")
run = widgets.current_run()
nntp = widgets.page_table(run, "nntp", "NNTP (metrics/nntp.parquet)")
model = widgets.pick("Model", run.models, key="nntp-model")
rows = nntp.filter(pl.col("model") == model)
if rows.is_empty():
    st.info(run.pending(f"NNTP of model {model}"))
    st.stop()
left, right = st.columns(2)
with left:
    k = widgets.pick("k", sorted(rows["k"].unique().to_list()), key="nntp-k")
with right:
    alpha = widgets.pick("α (gap length tolerated)", sorted(rows["alpha"].unique().to_list()), key="nntp-alpha")
order = run.layers(model)
name = widgets.export_name(run, "nntp", model, f"k{k}", f"alpha{alpha}")
t = figures.nntp_matrix(nntp, model, k, alpha, order)
widgets.show_figure(figures.nntp_heatmap(t, order, f"{model}: runs by first and last probe point (k = {k}, α = {alpha})"), name)
widgets.export_table(rows.filter((pl.col("k") == k) & (pl.col("alpha") == alpha)), name)

st.subheader("Persistence: pairs still connected at each probe point")
curves = figures.persistence(t, order)
starts = st.multiselect("Connected since", [*order, figures.ALL_CONNECTED], default=[order[0], figures.ALL_CONNECTED], key="nntp-starts")
log_y = st.toggle("Log scale", value=True, key="nntp-log")
widgets.show_figure(figures.persistence_figure(curves, order, starts, log_y), f"{name}-persistence")
widgets.export_table(curves, f"{name}-persistence")

partners = widgets.metric_table(run, "nntp_partners", None)
if partners is not None and not partners.filter((pl.col("model") == model) & (pl.col("k") == k)).is_empty():
    st.subheader("Persistent partners per sample (connected from the first probe point to the last)")
    widgets.show_figure(figures.partners_histogram(partners, model, k), f"{name}-partners")
