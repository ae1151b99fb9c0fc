"""What every figure shares: pair tables turned into matrices, titles, and the colour-scale conventions.

Matrices are indexed by probe points in chain order; rows are model A's probe points (top to bottom),
columns model B's. Cells a table does not hold stay NaN (shown blank), so nothing is invented.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import polars as pl

SEQUENTIAL = "Viridis"
DIVERGING = "RdBu_r"  # red above 0, blue below; always centred at 0
GREY = "#b4b4b4"  # cells greyed out on purpose (not above the null, or NNTP count 0): never confused with blank
NO_DATA = "#ececec"  # background, i.e. absent cells, of diverging heatmaps, whose 0 is white


def oriented(rows: pl.DataFrame, model_a: str, model_b: str) -> pl.DataFrame:
    """Rows of the pair (model_a, model_b) with layer_a from model_a, whichever way the table stored them.

    Tables of pairs hold each unordered pair once (per_sample, per_class, cka, nnts_null) or both ways
    (nnts); the mirror of every row (a <-> b) is added, which for a symmetric measure only repeats values.
    """
    swap = {c: c[:-1] + ("b" if c.endswith("a") else "a") for c in rows.columns if c.endswith(("_a", "_b"))}
    both = pl.concat([rows, rows.rename(swap).select(rows.columns)])
    return both.filter((pl.col("model_a") == model_a) & (pl.col("model_b") == model_b))


def pair_matrix(rows: pl.DataFrame, value: str, order_a: Sequence[str], order_b: Sequence[str]) -> np.ndarray:
    """(len(order_a), len(order_b)) float64 matrix of `value` at (layer_a, layer_b); NaN where absent."""
    index_a = {layer: i for i, layer in enumerate(order_a)}
    index_b = {layer: j for j, layer in enumerate(order_b)}
    z = np.full((len(order_a), len(order_b)), np.nan)
    for a, b, v in rows.select("layer_a", "layer_b", value).iter_rows():
        if a in index_a and b in index_b and v is not None:
            z[index_a[a], index_b[b]] = v
    return z


def clickable_cells(x: Sequence[str], y: Sequence[str], z: np.ndarray, hovertemplate: str) -> go.Scatter:
    """An invisible point at the centre of every cell of a categorical heatmap (z of shape (len(y), len(x))).

    Plotly cannot select heatmap cells, so a chart drawn with on_select reports a click through these
    points (x, y of the cell); they also carry the hover text, the heatmap's own hover is then skipped.
    """
    xs, ys = np.meshgrid(np.arange(len(x)), np.arange(len(y)))  # (len(y), len(x)) each
    return go.Scatter(x=[x[i] for i in xs.ravel()], y=[y[j] for j in ys.ravel()], customdata=z.ravel(), mode="markers",
                      marker={"symbol": "square", "size": 24, "opacity": 0}, hovertemplate=hovertemplate, name="cells", showlegend=False)


def unit_range(stretch: bool) -> dict[str, float]:
    """Colour limits of a similarity in [0, 1] (Jaccard, overlap, CKA): fixed 0–1 like the paper's figure,
    so two figures side by side compare by colour; `stretch` lets the data set the limits instead."""
    return {} if stretch else {"cmin": 0.0, "cmax": 1.0}


def titled(fig: go.Figure, title: str) -> go.Figure:
    """`fig` with its title, so a PNG or HTML export says on its own what it shows."""
    top = max(fig.layout.margin.t or 0, 90)
    fig.update_layout(title={"text": title, "x": 0.0, "xanchor": "left", "font": {"size": 15}}, margin={"t": top})
    return fig
