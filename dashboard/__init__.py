"""Streamlit dashboard over a runs directory (reads manifests and metric tables only; see app.py)."""

from __future__ import annotations

from pathlib import Path

APP = Path(__file__).with_name("app.py")
RUNS_ENV = "NNTS_RAY_RUNS"  # the runs directory the server may read below; set by nnts-ray-dashboard
