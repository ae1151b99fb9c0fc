"""The static HTML report: one self-contained file with the run's figures, and notes for what is missing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fakerun import KS, RUNS

from dashboard import loaders, report


def build(runs_root: Path, role: str) -> str:
    return report.build((runs_root / RUNS[role]).resolve(), RUNS[role])


def figure_specs(html: str) -> list[dict]:
    """The Plotly.newPlot(id, data, layout) calls of the report, data parsed back."""
    calls = re.findall(r'Plotly\.newPlot\(\s*"[^"]+",\s*(\[.*?\]),\s*\{', html, flags=re.S)
    return [{"data": json.loads(c)} for c in calls]


def test_sweep_report_is_self_contained_with_every_section(runs_root: Path) -> None:
    html = build(runs_root, "sweep")
    assert html.count("<script src=") == 0  # nothing fetched when opened
    assert html.count("plotly.js v") == 1  # plotly.js inlined once
    for heading in ("Model lenet_a", "Model lenet_b", "NNTS (Jaccard)", "NNTP (k = 5, α = 0)", "Per-layer statistics", "Linear CKA",
                    "Cross-model NNTS: lenet_a (rows) × lenet_b (columns)", "Conventions"):
        assert f">{heading}</h" in html, heading
    specs = figure_specs(html)
    assert len(specs) == 2 * 5 + 1  # per model: NNTS, NNTP, persistence, statistics, CKA; plus cross-model
    assert [t["meta"] for t in specs[0]["data"]] == list(KS)


def test_report_notes_missing_and_broken_tables(runs_root: Path) -> None:
    assert "Linear CKA (metrics/cka.parquet): not computed in this run." in build(runs_root, "single")
    assert "NNTS (metrics/nnts.parquet): not written yet" in build(runs_root, "running")
    corrupt = build(runs_root, "corrupt")
    assert 'class="error">metrics/nnts.parquet could not be read' in corrupt
    assert ">Model lenet</h2>" in corrupt


def test_report_command_line_writes_the_file(runs_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    report.main([str(runs_root / RUNS["single"]), "-o", str(out)])
    assert out.read_text().startswith("<!DOCTYPE html>") and RUNS["single"] in out.read_text()


def test_report_escapes_names(runs_root: Path) -> None:
    html = report.build((runs_root / RUNS["single"]).resolve(), "<script>alert(1)</script>")
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_report_of_a_directory_without_manifest_is_a_data_error(runs_root: Path) -> None:
    with pytest.raises(loaders.DataError, match="manifest.json could not be read"):
        report.build(runs_root / "notes", "notes")
