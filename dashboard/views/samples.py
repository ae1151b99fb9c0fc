"""Single samples: one sample's k nearest neighbours at each probe point, persistent ones marked."""

from __future__ import annotations

from functools import partial

import streamlit as st

from dashboard import gallery, loaders, widgets

st.title("Single samples")
run = widgets.current_run()
left, middle, right = st.columns(3)
with left:
    model = widgets.pick("Model", run.models, key="samples-model")
with middle:
    k = widgets.pick("k", run.k, key="samples-k")
with right:
    per_layer = int(st.number_input("Neighbours shown per probe point", 1, k, min(k, 15), key="samples-shown"))
order = run.layers(model)
samples = widgets.guarded(run, "samples.parquet", partial(loaders.samples, run.path))
if samples is None:
    st.stop()

how = st.radio("Choose a sample", ("by id", "most changed"), horizontal=True, key="samples-how")
if how == "by id":
    ids = samples["sample_id"]
    sample_id = int(st.number_input("Sample id", int(ids.min()), int(ids.max()), int(ids.min()), key="samples-id"))
    if not (ids == sample_id).any():
        st.warning(f"There is no sample with id {sample_id} in this run.")
        st.stop()
else:
    a, b = st.columns(2)
    with a:
        layer_a = widgets.pick("Between probe point", order, key="samples-layer-a")
    with b:
        layer_b = widgets.pick("and probe point", order, key="samples-layer-b", index=len(order) - 1)
    changed = widgets.guarded(run, "Per-sample NNTS", partial(loaders.most_changed, run.path, model, k, layer_a, layer_b))
    if changed is None or changed.is_empty():
        st.info(f"No per-sample values of {model} for {layer_a} → {layer_b} at k = {k} in this run.")
        st.stop()
    jaccard = dict(changed.iter_rows())
    sample_id = widgets.pick("Most changed (lowest Jaccard first)", list(jaccard), key="samples-changed",
                             format_func=lambda s: f"{s} (Jaccard {jaccard[s]:.3f})")

neighbours = widgets.guarded(run, f"Neighbour tables of {model}", partial(loaders.neighbours, run.path, model, order, sample_id, k))
if neighbours is None:
    st.stop()
present = [layer for layer in order if layer in set(neighbours["layer"])]
table = gallery.neighbour_table(neighbours, present, samples)
label = samples.filter(sample_id=sample_id)["label"].item() if "label" in samples.columns else None
thumbnails = widgets.guarded(run, "Thumbnails", partial(loaders.thumbnails, run.path, [sample_id, *table["neighbour_id"].to_list()])) or {}
if not thumbnails:
    st.caption("samples.parquet has no thumbnails: grey placeholders stand for the images.")
if len(present) < len(order):
    st.info(run.pending(f"Neighbour tables of {', '.join(p for p in order if p not in present)}"))
st.html(gallery.gallery_html(sample_id, label, table, thumbnails, per_layer))
st.caption(gallery.LEGEND)
st.dataframe(table, hide_index=True)
widgets.export_table(table, widgets.export_name(run, "neighbours", model, f"sample{sample_id}", f"k{k}"))
