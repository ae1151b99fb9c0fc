"""Per layer: statistics of each probe point (intrinsic dimension, label agreement, …) and CKA beside NNTS."""

from __future__ import annotations

from functools import partial

import polars as pl
import streamlit as st

from dashboard import loaders, widgets
from dashboard.figures.base import oriented
from dashboard.figures.layers import default_statistics, layer_statistics, layer_stats_figure
from dashboard.figures.similarity import Style, cka_heatmap, nnts_heatmaps

st.title("Per layer")
run = widgets.current_run()
model = widgets.pick("Model", run.models, key="layers-model", param="model")
order = run.layers(model)

layers = widgets.metric_table(run, "layers", "Per-layer statistics (metrics/layers.parquet)")
if layers is not None:
    layers = layers.filter(pl.col("model") == model).sort("position")
    stats = layer_statistics(layers)
    if not (default := default_statistics(stats)):
        st.info(run.pending("Per-layer statistics (intrinsic dimension, label agreement)"))
    chosen = widgets.pick_many("Statistics", stats, key="layers-stats", default=default)
    if chosen:
        samples = widgets.guarded(run, "samples.parquet", partial(loaders.samples, run.path))
        labels = samples["label"].drop_nulls().to_numpy() if samples is not None and "label" in samples.columns else None
        widgets.show_figure(layer_stats_figure(layers, order, chosen, labels), widgets.export_name(run, "layers", model),
                            run.title("Per-layer statistics", model))
        st.caption("Label agreement: the share of a sample's k neighbours with its class. Dashed: chance (random neighbours); "
                   "dotted: the ceiling the class sizes allow, mean over samples of min(1, (n_c − 1) / k).")
    widgets.show_table(layers, widgets.export_name(run, "layers", model))

st.subheader("Linear CKA beside NNTS")
nnts = widgets.metric_table(run, "nnts", "NNTS (metrics/nnts.parquet)")
ks = sorted(nnts.filter(pl.col("model_a") == model)["k"].unique().to_list()) if nnts is not None else []
left, right = st.columns(2)
k = widgets.pick("NNTS at k", ks, key="layers-k", param="k", where=left) if ks else None
stretch = right.toggle("Stretch colours to the data", key="layers-stretch", help="Off: CKA and NNTS both on a fixed 0–1 scale, so their colours compare.")
left, right = st.columns(2)
with left:
    cka = widgets.metric_table(run, "cka", "Linear CKA (metrics/cka.parquet)")
    if cka is not None:
        widgets.show_figure(cka_heatmap(cka, model, order, model, order, stretch), widgets.export_name(run, "cka", model), run.title("Linear CKA", model))
        widgets.export_table(oriented(cka, model, model), widgets.export_name(run, "cka", model))
with right:
    if k is not None:
        widgets.show_figure(nnts_heatmaps(nnts, model, order, model, order, [k], Style(stretch=stretch)), widgets.export_name(run, "nnts", model, f"k{k}"),
                            run.title("NNTS (jaccard)", model, k))
