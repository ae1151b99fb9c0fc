"""The report's figures as PNG, drawn on matplotlib `Figure` objects (no pyplot state, no display).
Saved without version metadata so that the same runs give the same bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm, Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

from nnts_ray.io import atomic_path
from nnts_ray.reproduction import paper
from nnts_ray.reproduction.runs import LayerMatrix
from nnts_ray.reproduction.seeds import Spread
from nnts_ray.reproduction.tables import ratio, ratio_cell, thousands

PANEL = 4.3  # inches per heatmap panel (width; the height adds room for the title and tick labels)


def _panels(columns: int, rows: int = 1) -> Figure:
    return Figure(figsize=(PANEL * columns, (PANEL + 0.9) * rows), layout="constrained")


def _save(fig: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=130, metadata={"Software": None})


def _heatmap(fig: Figure, ax, values: np.ndarray, names: tuple[str, ...], norm, cmap: str, text: list[list[str]],
             title: str, colorbar: str | None = "") -> None:
    """One annotated probe × probe heatmap; NaN cells stay blank; `colorbar`: its label, None for none."""
    im = ax.imshow(np.ma.masked_invalid(values), norm=norm, cmap=cmap)
    labels = [paper.label(n) for n in names]
    ax.set_xticks(range(len(names)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), labels, fontsize=7)
    ax.set_title(title, fontsize=9)
    for i in range(len(names)):
        for j in range(len(names)):
            if text[i][j]:
                rgba = im.cmap(im.norm(values[i, j]))
                dark = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] < 0.5
                ax.text(j, i, text[i][j], ha="center", va="center", fontsize=5, color="white" if dark else "black")
    if colorbar is not None:
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        bar.ax.tick_params(labelsize=7)
        bar.set_label(colorbar, fontsize=7)


def _grid(values: np.ndarray, fmt) -> list[list[str]]:
    return [["" if np.isnan(v) else fmt(v) for v in row] for row in values]


def nnts_heatmaps(mats: dict[int, LayerMatrix], class_size: float | None, path: Path) -> None:
    """Like the paper's Figure 1: one NNTS heatmap per k, one fixed 0–1 viridis scale."""
    fig = _panels(len(mats))
    axes = fig.subplots(1, len(mats), squeeze=False)[0]
    for ax, (k, m) in zip(axes, sorted(mats.items())):
        scale = f" ({k / class_size:.2g} × class size)" if class_size else ""
        _heatmap(fig, ax, m.values, m.names, Normalize(0, 1), "viridis", _grid(m.values, lambda v: f"{v:.2f}"),
                 f"NNTS, k = {k}{scale}", colorbar="NNTS (mean Jaccard)" if ax is axes[-1] else None)
    _save(fig, path)


def _upper_or_nan(t: np.ndarray) -> np.ndarray:
    return np.where(np.triu(np.ones_like(t, dtype=bool)), t, np.nan)


def nntp_comparison(ours: LayerMatrix, n: int, k: int, path: Path) -> None:
    """Our T and the paper's Table 1 as shares of n·k (one log scale), and their ratio (log2 scale)."""
    ref = paper.table1()
    a, b = _upper_or_nan(ours.values) / (n * k), _upper_or_nan(ref) / (paper.N * paper.NNTP_K)
    positive = np.concatenate([a[a > 0], b[b > 0]])
    norm = LogNorm(positive.min(), positive.max())
    r = ratio(ours, n, k).values
    log_ratio = np.log2(np.clip(r, 2.0 ** -6, 2.0 ** 6))
    fig = _panels(3)
    ax1, ax2, ax3 = fig.subplots(1, 3)
    _heatmap(fig, ax1, np.where(a > 0, a, np.nan), ours.names, norm, "viridis",
             _grid(_upper_or_nan(ours.values), thousands), f"ours: T in thousands (n = {n:,}, k = {k})", colorbar=None)
    _heatmap(fig, ax2, b, ours.names, norm, "viridis", _grid(_upper_or_nan(ref), thousands),
             f"paper, Table 1 (n = {paper.N:,}, k = {paper.NNTP_K})", colorbar="colour: T / (n·k), both panels")
    _heatmap(fig, ax3, log_ratio, ours.names, TwoSlopeNorm(0, -6, 6), "RdBu_r",
             _grid(r, ratio_cell), "ours / paper, each as a share of n·k", colorbar="log2 of the ratio")
    _save(fig, path)


def nnts_against_k(mats: dict[int, LayerMatrix], chance: dict[int, float], class_size: float | None,
                   path: Path) -> None:
    """Mean NNTS against k for all pairs, consecutive pairs and pairs with a last operation, with the
    chance level (which itself rises with k)."""
    ks = sorted(mats)
    names = mats[ks[0]].names
    i, j = np.triu_indices(len(names), 1)
    groups = {"all pairs": np.ones(len(i), bool), "consecutive probe points": j == i + 1,
              "pairs with " + "/".join(paper.LAST_OPERATIONS): np.array(
                  [names[a] in paper.LAST_OPERATIONS or names[b] in paper.LAST_OPERATIONS for a, b in zip(i, j)])}
    fig = Figure(figsize=(5.5, 3.6), layout="constrained")
    ax = fig.subplots()
    for label, mask in groups.items():
        if mask.any():
            ax.plot(ks, [mats[k].values[i, j][mask].mean() for k in ks], marker="o", label=label)
    ax.plot(ks, [chance[k] for k in ks], color="grey", linestyle=":", marker=".", label="chance (independent graphs)")
    if class_size:
        ax.axvline(class_size, color="grey", linestyle="--", linewidth=1)
        ax.text(class_size, 0.02, " mean class size", color="grey", fontsize=7, rotation=90, va="bottom")
    ax.set(xscale="log", xlabel="k", ylabel="mean NNTS (Jaccard)", ylim=(0, 1))
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    ax.legend(fontsize=7)
    _save(fig, path)


def seed_spread(spreads: list[Spread], n_seeds: int, path: Path) -> None:
    """Per k: the mean NNTS over seeds (0–1 viridis) and its standard deviation (own scale)."""
    fig = _panels(2, len(spreads))
    axes = fig.subplots(len(spreads), 2, squeeze=False)
    for (ax1, ax2), s in zip(axes, spreads):
        _heatmap(fig, ax1, s.mean.values, s.mean.names, Normalize(0, 1), "viridis",
                 _grid(s.mean.values, lambda v: f"{v:.2f}"), f"mean NNTS over {n_seeds} seeds, k = {s.k}")
        _heatmap(fig, ax2, s.std.values, s.std.names, Normalize(0, max(float(s.std.values.max()), 1e-6)), "magma",
                 _grid(s.std.values, lambda v: f"{v:.3f}"), f"standard deviation over seeds, k = {s.k}")
    _save(fig, path)
