"""Across models: NNTS between the probe points of model A (rows) and model B (columns) of a sweep."""

from __future__ import annotations

import streamlit as st

from dashboard import widgets
from dashboard.figures.base import oriented
from dashboard.figures.similarity import cka_heatmap
from dashboard.nnts_panel import nnts_section

st.title("Across models — cross-model NNTS")
run = widgets.current_run()
if len(run.models) < 2:
    st.info(f"Run {run.name} has one model ({', '.join(run.models) or 'none'}); cross-model NNTS needs a sweep of two or more.")
    st.stop()
nnts = widgets.page_table(run, "nnts", "NNTS (metrics/nnts.parquet)")
left, right = st.columns(2)
model_a = widgets.pick("Model A (rows)", run.models, key="cross-a", param="model", where=left)
model_b = widgets.pick("Model B (columns)", run.models, key="cross-b", param="model_b", default=run.models[1], where=right)
nnts_section(run, nnts, model_a, model_b, key="cross")
cka = widgets.metric_table(run, "cka", None)
if cka is not None and not oriented(cka, model_a, model_b).is_empty():
    st.subheader("Linear CKA between the two models")
    widgets.show_figure(cka_heatmap(cka, model_a, run.layers(model_a), model_b, run.layers(model_b), st.session_state.get("cross-stretch", False)),
                        widgets.export_name(run, "cka", model_a, model_b), run.title("Linear CKA", f"{model_a} (rows) × {model_b} (columns)"))
