"""NNTP: the start × end matrix of maximal stretches, how many pairs stay connected, persistent partners.

"Stretch" (a maximal run of consecutive probe points at which a pair is connected) is the word on every
figure: "run" already means an analysis run in this dashboard.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import polars as pl

from dashboard.figures.base import GREY, pair_matrix

ALL_CONNECTED = "all connected pairs"  # the persistence curve of |E_v|, beside the curves per start
_NNTP_SCALE = [[0.0, "#deebf7"], [0.5, "#4292c6"], [1.0, "#08306b"]]  # light to dark blue: never the grey of a 0


def nntp_matrix(nntp: pl.DataFrame, model: str, k: int, alpha: int, order: Sequence[str]) -> np.ndarray:
    """T[a, b]: stretches starting at probe point a and ending at b (upper triangle; absent cells count 0,
    the lower triangle is NaN: a stretch cannot end before it starts)."""
    rows = nntp.filter((pl.col("model") == model) & (pl.col("k") == k) & (pl.col("alpha") == alpha))
    rows = rows.rename({"layer_first": "layer_a", "layer_last": "layer_b"})
    z = pair_matrix(rows, "n_pairs", order, order)
    upper = np.triu(np.ones_like(z, dtype=bool))
    z[upper & np.isnan(z)] = 0.0
    return z


def thousands(t: np.ndarray) -> np.ndarray:
    """Cell labels in thousands, like the paper's table: '26.3', '0.2'; below 100 the exact count in
    thousands ('0.007'), so no non-zero cell reads 0; '0' for none; blank below the diagonal."""
    def one(v: float) -> str:
        if not np.isfinite(v):
            return ""
        return "0" if v == 0 else f"{v / 1000:.1f}" if v >= 100 else f"{v / 1000:.3f}".rstrip("0")
    return np.array([[one(v) for v in row] for row in t], dtype=object)


def nntp_heatmap(t: np.ndarray, order: Sequence[str]) -> go.Figure:
    """T on a log colour scale (one cell would dominate a linear one), annotated in thousands; cells with no
    stretch are grey and labelled 0, the impossible lower triangle is left blank (white)."""
    positive = np.where(t > 0, t, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_t = np.log10(positive)
    top = int(np.ceil(np.nanmax(log_t, initial=0.0)))
    ticks = list(range(0, max(top, 1) + 1))
    text = thousands(t)
    hover = "start: %{y}<br>end: %{x}<br>stretches: %{customdata:,.0f}<extra></extra>"
    # each trace labels only its own cells: a label drawn by both traces on one cell overlays a dark
    # default-coloured copy on the white one plotly picks for a dark cell (unreadable in the darkest cells)
    fig = go.Figure([
        go.Heatmap(z=log_t, x=list(order), y=list(order), customdata=t, text=np.where(t > 0, text, ""),
                   texttemplate="%{text}", colorscale=_NNTP_SCALE,
                   zmin=0, zmax=max(top, 1), hovertemplate=hover, name="stretches",
                   colorbar={"title": {"text": "stretches<br>(log scale)"}, "tickvals": ticks,
                             "ticktext": [f"{10 ** t:,}" if t < 3 else f"{10 ** (t - 3):,}k" for t in ticks]}),
        go.Heatmap(z=np.where(t == 0, 0.0, np.nan), x=list(order), y=list(order), customdata=t,
                   text=np.where(t == 0, text, ""), texttemplate="%{text}",
                   colorscale=[[0, GREY], [1, GREY]], showscale=False, hovertemplate=hover, name="no stretch"),
    ])
    fig.update_yaxes(autorange="reversed", title_text="first probe point (start)")
    fig.update_xaxes(title_text="last probe point (end)")
    fig.update_layout(height=560, plot_bgcolor="white")
    return fig


def persistence(t: np.ndarray, order: Sequence[str]) -> pl.DataFrame:
    """Survival of stretches: for each start a and each probe point v >= a, the stretches from a still alive at v.

    alive(a, v) = sum over b >= v of T[a, b]. Summing alive(a, v) over a <= v gives |E_v|, the pairs
    connected at v (the SPEC's check), returned as start = ALL_CONNECTED.
    """
    tz = np.nan_to_num(t)  # (L, L) upper triangular counts
    alive = np.flip(np.cumsum(np.flip(tz, axis=1), axis=1), axis=1)  # alive[a, v] = sum_{b >= v} T[a, b]
    alive = np.triu(alive)
    n = len(order)
    rows = [(order[a], order[v], v, float(alive[a, v])) for a in range(n) for v in range(a, n)]
    rows += [(ALL_CONNECTED, order[v], v, float(alive[: v + 1, v].sum())) for v in range(n)]
    return pl.DataFrame(rows, schema={"start": pl.String, "probe_point": pl.String, "position": pl.Int64, "n_pairs": pl.Float64}, orient="row")


def persistence_figure(curves: pl.DataFrame, order: Sequence[str], starts: Sequence[str], log_y: bool) -> go.Figure:
    fig = go.Figure()
    for start in starts:
        part = curves.filter(pl.col("start") == start).sort("position")
        dash = "dash" if start == ALL_CONNECTED else None
        fig.add_trace(go.Scatter(x=part["probe_point"].to_list(), y=part["n_pairs"].to_list(), mode="lines+markers", name=start, line={"dash": dash}))
    fig.update_xaxes(categoryorder="array", categoryarray=list(order), title_text="probe point")
    fig.update_yaxes(type="log" if log_y else "linear", title_text="pairs still connected")
    fig.update_layout(height=420, legend={"title": {"text": "connected since"}})
    return fig


def partners_histogram(partners: pl.DataFrame, model: str, k: int) -> go.Figure:
    """How many samples keep how many neighbours connected from the first probe point to the last."""
    counts = partners.filter((pl.col("model") == model) & (pl.col("k") == k))["persistent_partners"].value_counts().sort("persistent_partners")
    fig = go.Figure(go.Bar(x=counts["persistent_partners"].to_list(), y=counts["count"].to_list(),
                           hovertemplate="%{y} samples keep %{x} partners<extra></extra>"))
    fig.update_layout(height=340, xaxis={"title": {"text": "partners connected at every probe point"}}, yaxis={"title": {"text": "samples"}})
    return fig
