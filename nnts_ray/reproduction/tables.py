"""Markdown tables and the number formats of the report (run counts in thousands as the paper prints them)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from nnts_ray.reproduction import paper
from nnts_ray.reproduction.runs import LayerMatrix


def thousands(count: float) -> str:
    """A run count in thousands with Table 1's precision: 455, 36.0, 6.99, 0.06 (three digits, two decimals below 1)."""
    v = count / 1000
    if v == 0:
        return "0"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 0.01:
        return f"{v:.2f}"
    return f"{v:.1g}"


def markdown(header: list[str], rows: list[list[str]], align: str = "right") -> str:
    """A GitHub markdown table; the first column is left-aligned, the rest `align`."""
    rule = [":---"] + [("---:" if align == "right" else ":---")] * (len(header) - 1)
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def matrix(m: LayerMatrix, fmt: Callable[[float], str], upper: bool = False, corner: str = "") -> str:
    """A probe × probe matrix in network order with the paper's labels; `upper` blanks the lower triangle."""
    labels = [paper.label(n) for n in m.names]
    rows = [[f"**{labels[i]}**"] + [fmt(m.values[i, j]) if not upper or j >= i else "" for j in range(len(labels))]
            for i in range(len(labels))]
    return markdown([corner] + labels, rows)


def ratio(ours: LayerMatrix, n: int, k: int) -> LayerMatrix:
    """Our T over the paper's, each as a share of its n·k (NaN where the paper has no runs)."""
    ref = paper.table1() / (paper.N * paper.NNTP_K)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(ref > 0, ours.values / (n * k) / np.where(ref > 0, ref, 1), np.nan)
    return LayerMatrix(ours.names, values)


def ratio_cell(v: float) -> str:
    """A ratio with two significant digits, never in exponent notation."""
    if np.isnan(v):
        return "—"
    return f"{v:.0f}" if v >= 10 else f"{v:.2g}" if v >= 0.001 else "<0.001"
