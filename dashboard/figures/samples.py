"""Single samples: the distribution of per-sample Jaccard for one pair, and 2-D maps with a neighbourhood marked."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.colors import qualitative
from plotly.subplots import make_subplots

BINS = 20
EDGES = np.linspace(0.0, 1.0, BINS + 1)  # Jaccard lies in [0, 1]; the last bin includes 1
MAP_POINTS = 2000  # background samples drawn per map (seeded subsample beyond): SVG stays quick


def bin_of(jaccard: np.ndarray) -> np.ndarray:
    """Bin index of each value: [EDGES[i], EDGES[i+1]), the last bin closed (as numpy.histogram)."""
    return np.minimum(np.searchsorted(EDGES, jaccard, side="right") - 1, BINS - 1)


def bin_range(index: int) -> str:
    close = "]" if index == BINS - 1 else ")"
    return f"[{EDGES[index]:.2f}, {EDGES[index + 1]:.2f}{close}"


def jaccard_histogram(jaccard: np.ndarray, chance: float | None) -> go.Figure:
    """Samples per Jaccard bin; a bar is a click-through to its samples; the chance level marked."""
    counts = np.bincount(bin_of(jaccard), minlength=BINS)
    fig = go.Figure(go.Bar(x=(EDGES[:-1] + EDGES[1:]) / 2, y=counts, width=np.diff(EDGES) * 0.95, customdata=[bin_range(i) for i in range(BINS)],
                           hovertemplate="Jaccard %{customdata}: %{y} samples<br>click: list them<extra></extra>", name="samples"))
    if chance is not None:
        fig.add_vline(x=chance, line_dash="dash", line_color="grey", annotation_text=f"chance {chance:.3f}", annotation_position="top right")
    fig.update_xaxes(title_text="per-sample Jaccard", range=[0, 1])
    fig.update_yaxes(title_text="samples")
    fig.update_layout(height=340, bargap=0)
    return fig


def _palette(labels: Sequence[object]) -> dict[object, str]:
    colours = qualitative.Plotly + qualitative.D3 + qualitative.Set3
    return {label: colours[i % len(colours)] for i, label in enumerate(sorted(set(labels), key=str))}


def embedding_map(embedding: pl.DataFrame, layers: Sequence[str], sample_id: int, neighbours: dict[str, list[int]],
                  labels: pl.DataFrame | None, explained: dict[str, float], columns: int = 4) -> go.Figure:
    """One 2-D PCA map per probe point: every sample (up to MAP_POINTS, seeded) coloured by class, the
    sample's neighbours at that probe point circled, the sample itself a red star."""
    rows = -(-len(layers) // columns)
    titles = [f"{layer}" + (f" · PCA {explained[layer]:.0%} var." if explained.get(layer) is not None else "") for layer in layers]
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=titles, horizontal_spacing=0.03, vertical_spacing=0.12 / max(rows, 1) + 0.04)
    frame = embedding if labels is None else embedding.join(labels.select("sample_id", "label"), on="sample_id", how="left")
    palette = _palette(frame["label"].to_list()) if "label" in frame.columns else {}
    for i, layer in enumerate(layers):
        row, col = i // columns + 1, i % columns + 1
        points = frame.filter(pl.col("layer") == layer)
        near = set(neighbours.get(layer, []))
        background = points.filter(~pl.col("sample_id").is_in([sample_id, *near]))
        if background.height > MAP_POINTS:
            background = background.sample(MAP_POINTS, seed=0)
        colour = [palette[v] for v in background["label"].to_list()] if palette else "#888"
        fig.add_trace(go.Scatter(x=background["x"], y=background["y"], mode="markers", marker={"size": 3, "color": colour, "opacity": 0.45},
                                 text=background["sample_id"], hovertemplate="#%{text}<extra></extra>", name="samples", showlegend=False), row=row, col=col)
        circled = points.filter(pl.col("sample_id").is_in(list(near)))
        fig.add_trace(go.Scatter(x=circled["x"], y=circled["y"], mode="markers", name="neighbours", legendgroup="neighbours", showlegend=i == 0,
                                 marker={"size": 8, "color": "rgba(0,0,0,0)", "line": {"color": "black", "width": 1.5}},
                                 text=circled["sample_id"], hovertemplate="neighbour #%{text}<extra></extra>"), row=row, col=col)
        me = points.filter(pl.col("sample_id") == sample_id)
        fig.add_trace(go.Scatter(x=me["x"], y=me["y"], mode="markers", name=f"sample #{sample_id}", legendgroup="sample", showlegend=i == 0,
                                 marker={"size": 14, "symbol": "star", "color": "red", "line": {"color": "black", "width": 1}},
                                 hovertemplate=f"sample #{sample_id}<extra></extra>"), row=row, col=col)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(height=260 * rows + 120, legend={"orientation": "h", "y": -0.04}, plot_bgcolor="#fafafa")
    return fig
