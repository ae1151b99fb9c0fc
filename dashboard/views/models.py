"""Across models: NNTS between the probe points of model A (rows) and model B (columns) of a sweep."""

from __future__ import annotations

import streamlit as st

from dashboard import widgets

st.title("Across models — cross-model NNTS")
run = widgets.current_run()
if len(run.models) < 2:
    st.info(f"Run {run.name} has one model ({', '.join(run.models) or 'none'}); cross-model NNTS needs a sweep of two or more.")
    st.stop()
nnts = widgets.metric_table(run, "nnts", "NNTS (metrics/nnts.parquet)")
if nnts is None:
    st.stop()
left, right = st.columns(2)
with left:
    model_a = widgets.pick("Model A (rows)", run.models, key="cross-a")
with right:
    model_b = widgets.pick("Model B (columns)", run.models, key="cross-b", index=1)
widgets.nnts_section(run, nnts, model_a, model_b, key="cross")
