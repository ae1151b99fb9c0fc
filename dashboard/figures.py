"""Plotly figures built from metric tables: pure functions (no Streamlit), shared by the pages and the report.

Matrices are indexed by probe points in chain order; rows are model A's probe points (top to bottom),
columns model B's. Cells a table does not hold stay NaN (shown blank), so nothing is invented.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

FORMS = ("jaccard", "overlap")
ALL_CONNECTED = "all connected pairs"  # the persistence curve of |E_v|, beside the curves per start


def oriented(rows: pl.DataFrame, model_a: str, model_b: str) -> pl.DataFrame:
    """Rows of the pair (model_a, model_b) with layer_a from model_a, whichever way the table stored them.

    Tables of pairs hold each unordered pair once (per_sample, per_class, cka) or both ways (nnts); the
    mirror of every row (a <-> b) is added, which for a symmetric measure only repeats values.
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


def nnts_value(form: str, relative: bool) -> pl.Expr:
    """The plotted value: the Jaccard or overlap form, raw or divided by its chance level."""
    if form not in FORMS:
        raise ValueError(f"form={form!r}; choose one of {FORMS}")
    value = pl.col(form) / pl.col(f"chance_{form}") if relative else pl.col(form)
    return value.alias("value")


def value_label(form: str, relative: bool) -> str:
    return f"{form} / chance" if relative else form


def _hover(label: str, with_null: bool) -> str:
    lines = ["A: %{y}", "B: %{x}", f"{label}: %{{z:.4g}}", "raw: %{customdata[0]:.4g}", "chance: %{customdata[1]:.3g}"]
    if with_null:
        lines.append("z vs permutation null: %{customdata[2]:.3g}")
    return "<br>".join(lines) + "<extra>k = %{meta}</extra>"


def nnts_heatmaps(
    nnts: pl.DataFrame,
    model_a: str,
    order_a: Sequence[str],
    model_b: str,
    order_b: Sequence[str],
    ks: Sequence[int],
    form: str = "jaccard",
    relative: bool = False,
    null: pl.DataFrame | None = None,
) -> go.Figure:
    """One heatmap per k side by side (as in the paper's figure), on one shared colour scale."""
    label = value_label(form, relative)
    fig = make_subplots(rows=1, cols=len(ks), subplot_titles=[f"k = {k}" for k in ks], shared_yaxes=True, horizontal_spacing=0.04)
    for col, k in enumerate(ks, start=1):
        rows = oriented(nnts.filter(pl.col("k") == k), model_a, model_b).with_columns(nnts_value(form, relative))
        extra = [pair_matrix(rows, form, order_a, order_b), pair_matrix(rows, f"chance_{form}", order_a, order_b)]
        if null is not None:
            extra.append(pair_matrix(oriented(null.filter(pl.col("k") == k), model_a, model_b), "z", order_a, order_b))
        fig.add_trace(
            go.Heatmap(
                z=pair_matrix(rows, "value", order_a, order_b), x=list(order_b), y=list(order_a),
                customdata=np.dstack(extra), coloraxis="coloraxis", meta=k,
                hovertemplate=_hover(label, null is not None), name=f"k = {k}",
            ),
            row=1, col=col,
        )
    fig.update_yaxes(autorange="reversed")
    fig.update_yaxes(title_text=f"{model_a} probe point", col=1)
    fig.update_xaxes(title_text=f"{model_b} probe point")
    fig.update_layout(coloraxis={"colorscale": "Viridis", "colorbar": {"title": {"text": label}}}, height=460)
    return fig


def nntp_matrix(nntp: pl.DataFrame, model: str, k: int, alpha: int, order: Sequence[str]) -> np.ndarray:
    """T[a, b]: runs starting at probe point a and ending at b (upper triangle; absent runs count 0)."""
    rows = nntp.filter((pl.col("model") == model) & (pl.col("k") == k) & (pl.col("alpha") == alpha))
    rows = rows.rename({"layer_first": "layer_a", "layer_last": "layer_b"})
    z = pair_matrix(rows, "n_pairs", order, order)
    upper = np.triu(np.ones_like(z, dtype=bool))
    z[upper & np.isnan(z)] = 0.0
    return z


def nntp_heatmap(t: np.ndarray, order: Sequence[str], title: str) -> go.Figure:
    fig = go.Figure(
        go.Heatmap(
            z=t, x=list(order), y=list(order), colorscale="Blues", colorbar={"title": {"text": "runs"}},
            hovertemplate="start: %{y}<br>end: %{x}<br>runs: %{z:,.0f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", title_text="first probe point (start)")
    fig.update_xaxes(title_text="last probe point (end)")
    fig.update_layout(title={"text": title}, height=480)
    return fig


def persistence(t: np.ndarray, order: Sequence[str]) -> pl.DataFrame:
    """Survival of runs: for each start a and each probe point v >= a, the runs from a still alive at v.

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
    fig.update_layout(height=320, xaxis={"title": {"text": "partners connected at every probe point"}}, yaxis={"title": {"text": "samples"}})
    return fig


def layer_statistics(layers: pl.DataFrame) -> list[str]:
    """Numeric columns of layers.parquet that can be drawn along the chain (dim, |E_v|, analysis statistics)."""
    return [c for c, dtype in layers.schema.items() if dtype.is_numeric() and c != "position"]


def default_statistics(stats: Sequence[str]) -> list[str]:
    """The statistics worth a first look: intrinsic dimension and label agreement (not fit bookkeeping)."""
    return [s for s in stats if s == "twonn_id" or s.startswith("label_agreement_k")]


def layer_stats_figure(layers: pl.DataFrame, order: Sequence[str], stats: Sequence[str]) -> go.Figure:
    """One panel per statistic (intrinsic dimension, label agreement, …) along the probe points."""
    fig = make_subplots(rows=len(stats), cols=1, shared_xaxes=True, subplot_titles=list(stats), vertical_spacing=0.08)
    for row, stat in enumerate(stats, start=1):
        values = dict(layers.select("layer", stat).iter_rows())
        fig.add_trace(go.Scatter(x=list(order), y=[values.get(layer) for layer in order], mode="lines+markers", name=stat), row=row, col=1)
    fig.update_layout(height=max(260, 220 * len(stats)), showlegend=False)
    return fig


def cka_heatmap(cka: pl.DataFrame, model_a: str, order_a: Sequence[str], model_b: str, order_b: Sequence[str]) -> go.Figure:
    """Linear CKA between the probe points of model_a (rows) and model_b (columns)."""
    z = pair_matrix(oriented(cka, model_a, model_b), "cka", order_a, order_b)
    fig = go.Figure(
        go.Heatmap(z=z, x=list(order_b), y=list(order_a), colorscale="Viridis", zmin=0, zmax=1, colorbar={"title": {"text": "CKA"}},
                   hovertemplate="A: %{y}<br>B: %{x}<br>CKA: %{z:.4g}<extra></extra>")
    )
    fig.update_yaxes(autorange="reversed")
    title = model_a if model_a == model_b else f"{model_a} × {model_b}"
    fig.update_layout(title={"text": f"linear CKA — {title}"}, height=460)
    return fig


def per_class_heatmap(per_class: pl.DataFrame, model: str, order: Sequence[str], k: int) -> go.Figure:
    """Mean per-sample Jaccard by class at each step of the chain: which classes' neighbourhoods change where."""
    rows = oriented(per_class.filter(pl.col("k") == k), model, model)
    steps = list(zip(order[:-1], order[1:]))
    labels = sorted(rows["label"].unique().to_list())
    value = {(a, b, label): v for a, b, label, v in rows.select("layer_a", "layer_b", "label", "jaccard_mean").iter_rows()}
    z = np.array([[value.get((a, b, label), np.nan) for a, b in steps] for label in labels], dtype=float).reshape(len(labels), len(steps))
    fig = go.Figure(
        go.Heatmap(z=z, x=[f"{a} → {b}" for a, b in steps], y=[str(label) for label in labels], colorscale="Viridis",
                   colorbar={"title": {"text": "jaccard"}}, hovertemplate="class %{y}<br>%{x}<br>jaccard: %{z:.4g}<extra></extra>")
    )
    fig.update_layout(title={"text": f"per class, consecutive probe points (k = {k})"}, height=max(300, 40 * len(labels) + 160),
                      yaxis={"title": {"text": "class"}, "type": "category"})
    return fig


def stage_timings(timings: pl.DataFrame) -> go.Figure:
    """Seconds per pipeline stage, one bar group per stage and one bar per run."""
    fig = go.Figure()
    for (run,), part in timings.group_by("run", maintain_order=True):
        fig.add_trace(go.Bar(x=part["stage"].to_list(), y=part["seconds"].to_list(), name=str(run)))
    fig.update_layout(barmode="group", height=380, yaxis={"title": {"text": "seconds"}})
    return fig
