"""Runs side by side: seconds per pipeline stage."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl


def stage_timings(timings: pl.DataFrame) -> go.Figure:
    """Seconds per pipeline stage, one bar group per stage and one bar per run."""
    fig = go.Figure()
    for (run,), part in timings.group_by("run", maintain_order=True):
        fig.add_trace(go.Bar(x=part["stage"].to_list(), y=part["seconds"].to_list(), name=str(run)))
    fig.update_layout(barmode="group", height=380, yaxis={"title": {"text": "seconds"}}, xaxis={"title": {"text": "stage"}})
    return fig
