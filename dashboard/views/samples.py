"""Single samples: one sample's k nearest neighbours at each probe point, persistent ones marked, and
where the sample and its neighbours lie on a 2-D map of each probe point."""

from __future__ import annotations

from functools import partial

import polars as pl
import streamlit as st

from dashboard import gallery, loaders, sample_choice, widgets
from dashboard.figures.samples import embedding_map

st.title("Single samples")
run = widgets.current_run()
samples = widgets.guarded(run, "samples.parquet", partial(loaders.samples, run.path))
if samples is None or samples.is_empty():
    st.stop()
left, middle, right = st.columns(3)
model = widgets.pick("Model", run.models, key="samples-model", param="model", where=left)
ks = [k for k in run.k if k <= run.stored_ranks]
k = widgets.pick("k", ks, key="samples-k", param="k", where=middle,
                 help=f"The neighbour tables store {run.stored_ranks} ranks per sample; larger k are not offered here.")
st.session_state["samples-shown"] = min(st.session_state.get("samples-shown", 15), k)  # never above the k chosen now
per_layer = int(right.number_input("Neighbours shown per probe point", 1, k, key="samples-shown"))
order = run.layers(model)
sample_id = sample_choice.choose(run, samples, model, k)

neighbours = widgets.guarded(run, f"Neighbour tables of {model}", partial(loaders.neighbours, run.path, model, order, sample_id, k))
if neighbours is None:
    st.stop()
present = [layer for layer in order if layer in set(neighbours["layer"])]
label = sample_choice.label_of(samples, sample_id)
table = gallery.neighbour_table(neighbours, present, samples, label)
thumbnails = widgets.guarded(run, "Thumbnails", partial(loaders.thumbnails, run.path, [sample_id, *table["neighbour_id"].to_list()])) or {}
if not thumbnails:
    st.caption("samples.parquet has no thumbnails: grey placeholders stand for the images.")
if len(present) < len(order):
    st.info(run.pending(f"Neighbour tables of {', '.join(p for p in order if p not in present)}"))
st.subheader(f"Sample #{sample_id}" + ("" if label is None else f" (class {label})") + f": its {k} nearest neighbours at each probe point")
st.html(gallery.gallery_html(sample_id, label, table, thumbnails, per_layer))
st.caption(gallery.LEGEND)

st.subheader("Where the neighbourhood lies: 2-D map of each probe point")
embedding = widgets.guarded(run, "2-D maps (metrics/embedding.parquet, the first two principal components)",
                            partial(loaders.embedding, run.path, model))
if embedding is not None:
    layers = widgets.metric_table(run, "layers", None)
    explained = dict(layers.filter(pl.col("model") == model).select("layer", "pca_explained").iter_rows()) if layers is not None and "pca_explained" in layers.columns else {}
    shown = [layer for layer in present if layer in set(embedding["layer"])]
    near = {layer: rows["neighbour_id"].to_list() for (layer,), rows in table.filter(pl.col("rank") < per_layer).group_by("layer")}
    labels = samples if "label" in samples.columns else None
    widgets.show_figure(embedding_map(embedding, shown, sample_id, near, labels, explained), widgets.export_name(run, "map", model, f"sample{sample_id}", f"k{k}"),
                        run.title(f"PCA maps: sample #{sample_id} and its {per_layer} nearest neighbours", model, k))
    st.caption("Colour: class. Black circles: the neighbours shown above at that probe point; red star: the sample. "
               "Two components of many dimensions: a neighbour can look far on the map and still be near in the full space.")

st.subheader("Neighbour table")
widgets.show_table(table, widgets.export_name(run, "neighbours", model, f"sample{sample_id}", f"k{k}"))
