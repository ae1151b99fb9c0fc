"""NNTS heatmaps (with the permutation null), linear CKA, NNTS per class, and NNTS compared between runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from dashboard.figures.base import DIVERGING, GREY, NO_DATA, SEQUENTIAL, clickable_cells, oriented, pair_matrix, unit_range

FORMS = ("jaccard", "overlap")
SHOW_NNTS, SHOW_Z, SHOW_P = "NNTS", "z vs permutation null", "p-value (permutation)"
# NNTS along the chain, against one reference probe point per depth.
FROM_INPUT, CONSECUTIVE, TO_OUTPUT = "from the first probe point", "between consecutive probe points", "to the last probe point"
_DASHES = ("solid", "dash", "dot", "dashdot")


@dataclass(frozen=True)
class Style:
    """How NNTS heatmaps are drawn: which form, raw or ÷ chance, fixed or stretched colours, what to show
    (NNTS, z or p of the permutation null), and the p at or above which a cell is greyed out (None: never)."""

    form: str = "jaccard"
    relative: bool = False
    stretch: bool = False
    show: str = SHOW_NNTS
    grey_level: float | None = None

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise ValueError(f"form={self.form!r}; choose one of {FORMS}")
        if self.show not in (SHOW_NNTS, SHOW_Z, SHOW_P):
            raise ValueError(f"show={self.show!r}; choose one of {(SHOW_NNTS, SHOW_Z, SHOW_P)}")

    @property
    def label(self) -> str:
        return f"{self.form} / chance" if self.relative else self.form

    @property
    def per_panel(self) -> bool:
        """One colour axis per k: values ÷ chance and z-scores differ by k (chance ~7x between k = 15 and 100)."""
        return self.show == SHOW_Z or (self.show == SHOW_NNTS and self.relative)


def nnts_value(form: str, relative: bool) -> pl.Expr:
    """The plotted value: the Jaccard or overlap form, raw or divided by its chance level."""
    value = pl.col(form) / pl.col(f"chance_{form}") if relative else pl.col(form)
    return value.alias("value")


def scientific(p: np.ndarray) -> np.ndarray:
    """p-values as text in scientific notation ('2.4e-25'), blank where absent."""
    return np.array([[f"{v:.1e}" if np.isfinite(v) else "" for v in row] for row in p], dtype=object)


def _hover(style: Style, with_null: bool) -> str:
    shown = {SHOW_NNTS: f"{style.label}: %{{z:.4g}}", SHOW_Z: "z vs permutation null: %{z:.3g}", SHOW_P: "−log10 p: %{z:.3g}"}[style.show]
    lines = ["A: %{y}", "B: %{x}", shown, f"{style.form}: %{{customdata[0]:.4g}}", "chance: %{customdata[1]:.3g}"]
    if with_null:
        lines += ["z vs permutation null: %{customdata[2]:.3g}", "p (permutation): %{customdata[3]:.2e}"]
    return "<br>".join(lines) + "<extra>k = %{meta}</extra>"


def _colour_axis(style: Style, k: int, top: float) -> dict:
    """Layout of one colour axis: shared (raw NNTS on 0–1, p-values) or one per k (÷ chance, z)."""
    if style.show == SHOW_P:
        ticks = np.arange(0, int(np.ceil(top)) + 1)
        return {"colorscale": SEQUENTIAL, "cmin": 0.0, "cmax": max(top, 1.0),
                "colorbar": {"title": {"text": "p-value<br>(permutation)"}, "tickvals": ticks.tolist(),
                             "ticktext": ["1" if t == 0 else f"1e-{t}" for t in ticks]}}
    if style.show == SHOW_Z:
        return {"colorscale": DIVERGING, "cmid": 0.0, "colorbar": {"title": {"text": f"z vs null<br>k = {k} only"}}}
    if style.relative:
        return {"colorscale": SEQUENTIAL, "colorbar": {"title": {"text": f"{style.label}<br>k = {k} only"}}}
    title = style.label + ("<br>(stretched)" if style.stretch else "")
    return {"colorscale": SEQUENTIAL, **unit_range(style.stretch), "colorbar": {"title": {"text": title}}}


def null_matrices(null: pl.DataFrame | None, k: int, model_a: str, order_a: Sequence[str], model_b: str,
                  order_b: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(z, p) of the permutation null at k as matrices; NaN where no test was run (diagonal, large k, no table)."""
    if null is None:
        empty = np.full((len(order_a), len(order_b)), np.nan)
        return empty, empty.copy()
    rows = oriented(null.filter(pl.col("k") == k), model_a, model_b)
    return pair_matrix(rows, "z", order_a, order_b), pair_matrix(rows, "p_value", order_a, order_b)


def nnts_heatmaps(nnts: pl.DataFrame, model_a: str, order_a: Sequence[str], model_b: str, order_b: Sequence[str],
                  ks: Sequence[int], style: Style = Style(), null: pl.DataFrame | None = None) -> go.Figure:
    """One heatmap per k side by side (as in the paper's figure).

    Raw NNTS share one colour axis, fixed at 0–1 unless stretched; values ÷ chance and z-scores get one
    axis per panel, said in each colour bar. Cells whose permutation p is at or above `style.grey_level`
    are drawn grey in a second trace, so they are neither hidden nor mistaken for low similarity.
    """
    if style.show != SHOW_NNTS and null is None:
        raise ValueError(f"show={style.show!r} needs the permutation null (metrics/nnts_null.parquet)")
    fig = make_subplots(rows=1, cols=len(ks), subplot_titles=[f"k = {k}" for k in ks], shared_yaxes=True,
                        horizontal_spacing=0.16 if style.per_panel else 0.04)
    top = 0.0
    for col, k in enumerate(ks, start=1):
        rows = oriented(nnts.filter(pl.col("k") == k), model_a, model_b).with_columns(nnts_value(style.form, style.relative))
        z_null, p_null = null_matrices(null, k, model_a, order_a, model_b, order_b)
        with np.errstate(divide="ignore", invalid="ignore"):
            shown = {SHOW_NNTS: pair_matrix(rows, "value", order_a, order_b), SHOW_Z: z_null, SHOW_P: -np.log10(p_null)}[style.show]
        top = max(top, float(np.nanmax(shown, initial=0.0)))
        grey = np.greater_equal(p_null, style.grey_level, where=np.isfinite(p_null), out=np.zeros(p_null.shape, bool)) if style.grey_level else np.zeros(shown.shape, bool)
        custom = np.dstack([pair_matrix(rows, style.form, order_a, order_b), pair_matrix(rows, f"chance_{style.form}", order_a, order_b), z_null, p_null])
        axis = "coloraxis" if col == 1 or not style.per_panel else f"coloraxis{col}"
        text = {"text": scientific(p_null), "texttemplate": "%{text}"} if style.show == SHOW_P else {}
        fig.add_trace(go.Heatmap(z=np.where(grey, np.nan, shown), x=list(order_b), y=list(order_a), customdata=custom, coloraxis=axis,
                                 meta=k, hovertemplate=_hover(style, null is not None), name=f"k = {k}", **text), row=1, col=col)
        if grey.any():
            fig.add_trace(go.Heatmap(z=np.where(grey, 1.0, np.nan), x=list(order_b), y=list(order_a), customdata=custom,
                                     colorscale=[[0, GREY], [1, GREY]], showscale=False, meta=k, name=f"not above the null (k = {k})",
                                     hovertemplate="A: %{y}<br>B: %{x}<br>not above the permutation null<br>p = %{customdata[3]:.2e}<extra>k = %{meta}</extra>"),
                          row=1, col=col)
    for col, k in enumerate(ks if style.per_panel else ks[:1], start=1):
        axis = _colour_axis(style, k, top)
        if style.per_panel:  # each bar just right of its panel, its title written along it (not over the next panel)
            domain = fig.layout[f"xaxis{'' if col == 1 else col}"].domain
            axis["colorbar"] |= {"x": domain[1] + 0.008, "xanchor": "left", "len": 0.9, "thickness": 12}
            axis["colorbar"]["title"] |= {"side": "right", "text": axis["colorbar"]["title"]["text"].replace("<br>", " · ")}
        fig.update_layout({"coloraxis" if col == 1 else f"coloraxis{col}": axis})
    fig.update_yaxes(autorange="reversed")
    fig.update_yaxes(title_text=f"{model_a} probe point", col=1)
    fig.update_xaxes(title_text=f"{model_b} probe point")
    fig.update_layout(height=480, plot_bgcolor=NO_DATA if style.show == SHOW_Z else "white")
    return fig


def cka_heatmap(cka: pl.DataFrame, model_a: str, order_a: Sequence[str], model_b: str, order_b: Sequence[str], stretch: bool = False) -> go.Figure:
    """Linear CKA between the probe points of model_a (rows) and model_b (columns), on 0–1 unless stretched."""
    z = pair_matrix(oriented(cka, model_a, model_b), "cka", order_a, order_b)
    limits = unit_range(stretch)
    fig = go.Figure(go.Heatmap(z=z, x=list(order_b), y=list(order_a), colorscale=SEQUENTIAL, zmin=limits.get("cmin"), zmax=limits.get("cmax"),
                               colorbar={"title": {"text": "CKA" + ("<br>(stretched)" if stretch else "")}},
                               hovertemplate="A: %{y}<br>B: %{x}<br>CKA: %{z:.4g}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title_text=f"{model_a} probe point")
    fig.update_xaxes(title_text=f"{model_b} probe point")
    fig.update_layout(height=480, plot_bgcolor="white")
    return fig


def step_label(a: str, b: str) -> str:
    return f"{a} → {b}"


def per_class_heatmap(per_class: pl.DataFrame, model: str, order: Sequence[str], k: int, stretch: bool = False) -> go.Figure:
    """Mean per-sample Jaccard by class at each step of the chain: which classes' neighbourhoods change where.

    Classes read upwards like a numeric axis (class 0 at the bottom); a cell is a click-through to the
    most changed samples of that class and step.
    """
    rows = oriented(per_class.filter(pl.col("k") == k), model, model)
    steps = list(zip(order[:-1], order[1:]))
    labels = sorted(rows["label"].unique().to_list())
    value = {(a, b, label): v for a, b, label, v in rows.select("layer_a", "layer_b", "label", "jaccard_mean").iter_rows()}
    z = np.array([[value.get((a, b, label), np.nan) for a, b in steps] for label in labels], dtype=float).reshape(len(labels), len(steps))
    limits = unit_range(stretch)
    x, y = [step_label(a, b) for a, b in steps], [str(label) for label in labels]
    fig = go.Figure([
        go.Heatmap(z=z, x=x, y=y, colorscale=SEQUENTIAL, zmin=limits.get("cmin"), zmax=limits.get("cmax"),
                   colorbar={"title": {"text": "mean jaccard"}}, hoverinfo="skip"),
        clickable_cells(x, y, z, "class %{y}<br>%{x}<br>mean jaccard: %{customdata:.4g}<br>click: its most changed samples<extra></extra>"),
    ])
    fig.update_yaxes(title_text="class", type="category", categoryorder="array", categoryarray=[str(label) for label in labels], autorange=True)
    fig.update_xaxes(title_text="consecutive probe points")
    fig.update_layout(height=max(320, 34 * len(labels) + 200), plot_bgcolor="white")
    return fig


def depth_profile(nnts: pl.DataFrame, model: str, order: Sequence[str], k: int, column: str, reference: str) -> pl.DataFrame:
    """`column` of NNTS (e.g. jaccard) of one model along its chain at k: each probe point against the
    first, the previous or the last one (`reference`), as (position, layer, value); a probe point without
    its pair in the table is left out."""
    if reference not in (FROM_INPUT, CONSECUTIVE, TO_OUTPUT):
        raise ValueError(f"reference={reference!r}; choose one of {(FROM_INPUT, CONSECUTIVE, TO_OUTPUT)}")
    pairs = {FROM_INPUT: [(order[0], v) for v in order], CONSECUTIVE: list(zip(order[:-1], order[1:])),
             TO_OUTPUT: [(v, order[-1]) for v in order]}[reference]
    rows = oriented(nnts.filter(pl.col("k") == k), model, model)
    value = {(a, b): v for a, b, v in rows.select("layer_a", "layer_b", column).iter_rows()}
    shown_at = [a if reference == TO_OUTPUT else b for a, b in pairs]  # the probe point each value is drawn at
    points = [(list(order).index(v), v, value.get(pair)) for v, pair in zip(shown_at, pairs)]
    return pl.DataFrame([p for p in points if p[2] is not None], schema={"position": pl.Int64, "layer": pl.String, "value": pl.Float64}, orient="row")


def depth_curves(profiles: Sequence[tuple[str, Sequence[str], pl.DataFrame]], label: str, reference: str) -> go.Figure:
    """Depth profiles of several runs or models overlaid: (label, chain, profile). Chains that are the
    same probe points share a probe-point axis; otherwise depth is relative (0 = first, 1 = last)."""
    same_chain = len({tuple(order) for _, order, _ in profiles}) == 1
    fig = go.Figure()
    for i, (name, order, profile) in enumerate(profiles):
        x = profile["layer"].to_list() if same_chain else (profile["position"] / max(len(order) - 1, 1)).to_list()
        style = {"color": qualitative.Plotly[i % len(qualitative.Plotly)], "dash": _DASHES[i % len(_DASHES)]}  # identical curves stay visible
        fig.add_trace(go.Scatter(x=x, y=profile["value"].to_list(), mode="lines+markers", name=name, text=profile["layer"].to_list(), line=style,
                                 hovertemplate=f"{name}<br>%{{text}}: %{{y:.4g}}<extra></extra>"))
    if same_chain:
        fig.update_xaxes(categoryorder="array", categoryarray=list(profiles[0][1]), title_text="probe point")
    else:
        fig.update_xaxes(title_text="relative depth (0 = first probe point, 1 = last)", range=[-0.02, 1.02])
    fig.update_yaxes(title_text=f"NNTS ({label})<br>{reference}", rangemode="tozero")
    fig.update_layout(height=440, legend={"title": {"text": "run · model"}})
    return fig


def difference_heatmap(a: np.ndarray, b: np.ndarray, order: Sequence[str], label_a: str, label_b: str, value: str) -> go.Figure:
    """b − a cell by cell, on a diverging scale centred at 0 and symmetric, so the sign reads from the colour."""
    diff = b - a
    top = float(np.nanmax(np.abs(diff), initial=0.0)) or 1.0  # identical matrices: all white on a ±1 scale
    fig = go.Figure(go.Heatmap(
        z=diff, x=list(order), y=list(order), colorscale=DIVERGING, zmid=0.0, zmin=-top, zmax=top, customdata=np.dstack([a, b]),
        colorbar={"title": {"text": f"{value}<br>b − a"}},
        hovertemplate=f"A: %{{y}}<br>B: %{{x}}<br>a ({label_a}): %{{customdata[0]:.4g}}<br>b ({label_b}): %{{customdata[1]:.4g}}<br>b − a: %{{z:+.4g}}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title_text="probe point", showgrid=False)
    fig.update_xaxes(title_text="probe point", showgrid=False)
    fig.update_layout(height=500, plot_bgcolor=NO_DATA)  # a cell of 0 is white: absent cells must differ
    return fig
