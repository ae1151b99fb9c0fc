"""A static HTML report of one run: one self-contained file (plotly.js inlined once) to share without a server.

It shows what the pages show by default — NNTS for every k, NNTP and persistence, per-layer statistics,
CKA, cross-model NNTS — from the same loaders and figures, and says which tables the run lacks.
Build it from the Runs page, or `python -m dashboard.report RUN_DIR -o report.html`.
"""

from __future__ import annotations

import argparse
import html
import json
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import polars as pl

from dashboard import loaders
from dashboard.figures.base import titled
from dashboard.figures.layers import default_statistics, layer_statistics, layer_stats_figure
from dashboard.figures.persistence import ALL_CONNECTED, nntp_heatmap, nntp_matrix, persistence, persistence_figure
from dashboard.figures.similarity import cka_heatmap, nnts_heatmaps
from dashboard.run import Run

_STYLE = """body{font-family:sans-serif;max-width:1400px;margin:auto;padding:1em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}
.note{color:#555}.error{color:#b00020}pre{background:#f6f6f6;padding:.5em;overflow:auto}"""


class _Report:
    """Accumulates HTML parts; plotly.js is written with the first figure only."""

    def __init__(self, run: Run):
        self.run = run
        self.parts: list[str] = []
        self._plotly_written = False

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def note(self, text: str, css: str = "note") -> None:
        self.parts.append(f'<p class="{css}">{html.escape(text)}</p>')

    def figure(self, fig: go.Figure, title: str) -> None:
        self.parts.append(titled(fig, title).to_html(full_html=False, include_plotlyjs=not self._plotly_written))
        self._plotly_written = True

    def pre(self, text: str) -> None:
        self.parts.append(f"<pre>{html.escape(text)}</pre>")

    def table(self, frame: pl.DataFrame) -> None:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in frame.iter_rows())
        self.parts.append(f"<table><tr>{head}</tr>{body}</table>")

    def metric(self, name: str, what: str) -> pl.DataFrame | None:
        """The table, or None after a note saying it is missing or broken."""
        try:
            return loaders.table(self.run.path, name)
        except loaders.MissingTable:
            self.note(self.run.pending(what))
        except loaders.DataError as exc:
            self.note(str(exc), "error")
        return None


def _model_sections(report: _Report, model: str, tables: dict[str, pl.DataFrame | None], labels: np.ndarray | None) -> None:
    run = report.run
    order = run.layers(model)
    report.heading(f"Model {model}")
    if (nnts := tables["nnts"]) is not None:
        ks = sorted(nnts.filter(pl.col("model_a") == model)["k"].unique().to_list())
        if ks:
            report.heading("NNTS (Jaccard)", 3)
            report.figure(nnts_heatmaps(nnts, model, order, model, order, ks, null=tables["nnts_null"]), run.title("NNTS (jaccard)", model, ", ".join(map(str, ks))))
    if (nntp := tables["nntp"]) is not None and not (rows := nntp.filter(pl.col("model") == model)).is_empty():
        k, alpha = int(rows["k"].min()), int(rows["alpha"].min())
        t = nntp_matrix(nntp, model, k, alpha, order)
        report.heading(f"NNTP (k = {k}, α = {alpha})", 3)
        report.figure(nntp_heatmap(t, order), run.title(f"NNTP: stretches by first and last probe point (α = {alpha}, in thousands)", model, k))
        report.figure(persistence_figure(persistence(t, order), order, [order[0], ALL_CONNECTED], log_y=True),
                      run.title(f"NNTP: pairs still connected (α = {alpha})", model, k))
    if (layers := tables["layers"]) is not None and (stats := default_statistics(layer_statistics(layers))):
        report.heading("Per-layer statistics", 3)
        report.figure(layer_stats_figure(layers.filter(pl.col("model") == model), order, stats, labels), run.title("Per-layer statistics", model))
    if (cka := tables["cka"]) is not None:
        report.heading("Linear CKA", 3)
        report.figure(cka_heatmap(cka, model, order, model, order), run.title("Linear CKA", model))


def _cross_model(report: _Report, nnts: pl.DataFrame) -> None:
    run = report.run
    for model_a, model_b in combinations(run.models, 2):
        between = pl.col("model_a").is_in([model_a, model_b]) & pl.col("model_b").is_in([model_a, model_b])
        ks = sorted(nnts.filter(between & (pl.col("model_a") != pl.col("model_b")))["k"].unique().to_list())
        if ks:
            report.heading(f"Cross-model NNTS: {model_a} (rows) × {model_b} (columns)")
            report.figure(nnts_heatmaps(nnts, model_a, run.layers(model_a), model_b, run.layers(model_b), ks),
                          run.title("NNTS (jaccard)", f"{model_a} (rows) × {model_b} (columns)", ", ".join(map(str, ks))))


def build(run_path: Path, name: str) -> str:
    """The report of the run at `run_path` (already resolved inside the runs root) as one HTML string."""
    run = Run.of(name, run_path, loaders.manifest(run_path))
    report = _Report(run)
    manifest = run.manifest
    report.heading(f"nnts_ray run {name}", 1)
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report.note(f"status {run.status} · dataset {((manifest.get('config') or {}).get('dataset') or {}).get('name')} · "
                f"{manifest.get('n_samples')} samples · k = {run.k} · models {', '.join(run.models)} · "
                f"fingerprint {manifest.get('fingerprint')} · created {manifest.get('created')} · report generated {generated}")
    report.heading("Stages")
    report.table(run.stages)
    tables = {
        "nnts": report.metric("nnts", "NNTS (metrics/nnts.parquet)"),
        "nntp": report.metric("nntp", "NNTP (metrics/nntp.parquet)"),
        "layers": report.metric("layers", "Per-layer statistics (metrics/layers.parquet)"),
        "cka": report.metric("cka", "Linear CKA (metrics/cka.parquet)"),
        "nnts_null": report.metric("nnts_null", "Permutation null (metrics/nnts_null.parquet)"),
    }
    try:
        samples = loaders.samples(run.path)
        labels = samples["label"].drop_nulls().to_numpy() if "label" in samples.columns else None
    except loaders.DataError:
        labels = None
    for model in run.models:
        _model_sections(report, model, tables, labels)
    if tables["nnts"] is not None and len(run.models) > 1:
        _cross_model(report, tables["nnts"])
    for title in ("conventions", "config", "versions"):
        report.heading(title.capitalize())
        report.pre(json.dumps(manifest.get(title) or {}, indent=2))
    body = "\n".join(report.parts)
    return f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(name)} — nnts_ray</title><style>{_STYLE}</style></head><body>{body}</body></html>'


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the static HTML report of one nnts_ray run.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("-o", "--output", type=Path, default=Path("report.html"))
    args = parser.parse_args(argv)
    args.output.write_text(build(args.run_dir.resolve(), args.run_dir.name))


if __name__ == "__main__":
    main()
