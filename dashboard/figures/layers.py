"""Per-layer statistics along the chain, each on its own labelled axis with its reference lines."""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

_AGREEMENT = re.compile(r"label_agreement_k(\d+)$")
_TITLES = {"twonn_id": "intrinsic dimension (TwoNN)", "dim": "feature dimension", "n_edges_k": "connected pairs |E_v|",
           "pca_explained": "variance in the 2-D map", "twonn_n_used": "TwoNN: samples fitted", "twonn_n_zero": "TwoNN: duplicates dropped"}
CHANCE, CEILING = "chance", "ceiling"  # names of the reference traces


def layer_statistics(layers: pl.DataFrame) -> list[str]:
    """Numeric columns of layers.parquet that can be drawn along the chain (dim, |E_v|, analysis statistics)."""
    return [c for c, dtype in layers.schema.items() if dtype.is_numeric() and c not in ("position", "label_agreement_chance")]


def default_statistics(stats: Sequence[str]) -> list[str]:
    """The statistics worth a first look: intrinsic dimension and label agreement (not fit bookkeeping)."""
    return [s for s in stats if s == "twonn_id" or _AGREEMENT.match(s)]


def axis_title(stat: str) -> str:
    if match := _AGREEMENT.match(stat):
        return f"label agreement (k = {match[1]})"
    return _TITLES.get(stat, stat)


def label_ceiling(labels: np.ndarray, k: int) -> float:
    """The most kNN label agreement can reach at k, averaged over samples: a sample of class c with n_c
    members has at most n_c − 1 neighbours of its class, so it agrees at most min(1, (n_c − 1) / k)."""
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return float(np.minimum(1.0, (counts[inverse] - 1) / k).mean())


def layer_stats_figure(layers: pl.DataFrame, order: Sequence[str], stats: Sequence[str], labels: np.ndarray | None = None) -> go.Figure:
    """One panel per statistic along the probe points, with a y-axis title; label agreement panels carry
    the chance level (label_agreement_chance) and the ceiling the class sizes allow (from `labels`)."""
    fig = make_subplots(rows=len(stats), cols=1, shared_xaxes=True, vertical_spacing=0.06)
    chance = layers["label_agreement_chance"].drop_nulls() if "label_agreement_chance" in layers.columns else pl.Series([])
    for row, stat in enumerate(stats, start=1):
        values = dict(layers.select("layer", stat).iter_rows())
        fig.add_trace(go.Scatter(x=list(order), y=[values.get(layer) for layer in order], mode="lines+markers", name=stat,
                                 hovertemplate=f"%{{x}}<br>{axis_title(stat)}: %{{y:.4g}}<extra></extra>"), row=row, col=1)
        fig.update_yaxes(title_text=axis_title(stat), row=row, col=1)
        if match := _AGREEMENT.match(stat):
            references = [(CHANCE, float(chance[0]) if len(chance) else None, "dash"),
                          (CEILING, label_ceiling(labels, int(match[1])) if labels is not None else None, "dot")]
            for name, level, dash in references:
                if level is not None:
                    fig.add_trace(go.Scatter(x=list(order), y=[level] * len(order), mode="lines", name=name, line={"dash": dash, "color": "grey"},
                                             hovertemplate=f"{name}: {level:.3f}<extra></extra>"), row=row, col=1)
                    fig.add_annotation(x=order[-1], y=level, text=f"{name} {level:.2f}", showarrow=False, xanchor="right", yanchor="bottom",
                                       font={"size": 10, "color": "grey"}, row=row, col=1)
    fig.update_xaxes(title_text="probe point", row=len(stats), col=1)
    fig.update_layout(height=max(300, 240 * len(stats) + 60), showlegend=False)
    return fig
