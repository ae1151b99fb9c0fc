"""NNTP: how long neighbour pairs stay connected along the chain (start × end stretch counts, survival)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import widgets
from dashboard.figures.persistence import ALL_CONNECTED, nntp_heatmap, nntp_matrix, partners_histogram, persistence, persistence_figure

st.title("NNTP — nearest-neighbour topological persistence")
run = widgets.current_run()
nntp = widgets.page_table(run, "nntp", "NNTP (metrics/nntp.parquet)")
model = widgets.pick("Model", run.models, key="nntp-model", param="model")
rows = nntp.filter(pl.col("model") == model)
if rows.is_empty():
    st.info(run.pending(f"NNTP of model {model}"))
    st.stop()
left, right = st.columns(2)
k = widgets.pick("k", sorted(rows["k"].unique().to_list()), key="nntp-k", param="k", where=left)
alpha = widgets.pick("α (gap length tolerated)", sorted(rows["alpha"].unique().to_list()), key="nntp-alpha", where=right)
order = run.layers(model)
name = widgets.export_name(run, "nntp", model, f"k{k}", f"alpha{alpha}")
t = nntp_matrix(nntp, model, k, alpha, order)
st.caption("T[a, b] counts maximal stretches: a pair of samples connected (either is among the other's k nearest neighbours) "
           "at every probe point from a to b" + (f", gaps of up to {alpha} probe points tolerated" if alpha else "")
           + ", and not just before a or just after b. Diagonal: transient connections; top right: pairs connected through the whole network.")
widgets.show_figure(nntp_heatmap(t, order), name, run.title(f"NNTP: stretches by first and last probe point (α = {alpha}, in thousands)", model, k))
st.caption("Numbers in thousands. Colour on a log scale; grey cells: no stretch (0); blank lower triangle: impossible (a stretch cannot end before it starts).")
widgets.show_table(rows.filter((pl.col("k") == k) & (pl.col("alpha") == alpha)), name)

st.subheader("Persistence: pairs still connected at each probe point")
curves = persistence(t, order)
starts = widgets.pick_many("Connected since", [*order, ALL_CONNECTED], key="nntp-starts", default=[order[0], ALL_CONNECTED])
log_y = st.toggle("Log scale", value=True, key="nntp-log")
widgets.show_figure(persistence_figure(curves, order, starts, log_y), f"{name}-persistence",
                    run.title(f"NNTP: pairs still connected, by the probe point they connected at (α = {alpha})", model, k))
widgets.show_table(curves, f"{name}-persistence")

partners = widgets.metric_table(run, "nntp_partners", None)
if partners is not None and not partners.filter((pl.col("model") == model) & (pl.col("k") == k)).is_empty():
    st.subheader("Persistent partners per sample (connected from the first probe point to the last)")
    widgets.show_figure(partners_histogram(partners, model, k), f"{name}-partners",
                        run.title("Samples by partners connected at every probe point", model, k))
