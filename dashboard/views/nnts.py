"""NNTS: probe point × probe point similarity within one model, several k side by side."""

from __future__ import annotations

import streamlit as st

from dashboard import widgets

st.title("NNTS — nearest-neighbour topological similarity")
run = widgets.current_run()
nnts = widgets.metric_table(run, "nnts", "NNTS (metrics/nnts.parquet)")
if nnts is None:
    st.stop()
model = widgets.pick("Model", run.models, key="nnts-model")
widgets.nnts_section(run, nnts, model, model, key="nnts")
