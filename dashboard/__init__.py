"""Streamlit dashboard over a runs directory (reads manifests and metric tables only; see app.py)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

APP = Path(__file__).with_name("app.py")
RUNS_ENV = "NNTS_RAY_RUNS"  # the runs directory the server may read below; set by nnts-ray-dashboard


class PageInfo(NamedTuple):
    """One page of the app: its module under views/, navigation title, URL path and heading."""

    file: str
    title: str
    url_path: str
    heading: str


# The pages in navigation order; app.py, the screenshots command and the browser test all read this list.
PAGES = (
    PageInfo("runs.py", "Runs", "", "Runs"),
    PageInfo("nnts.py", "NNTS", "nnts", "NNTS — nearest-neighbour topological similarity"),
    PageInfo("nntp.py", "NNTP", "nntp", "NNTP — nearest-neighbour topological persistence"),
    PageInfo("layers.py", "Per layer", "layers", "Per layer"),
    PageInfo("models.py", "Across models", "models", "Across models — cross-model NNTS"),
    PageInfo("compare.py", "Compare", "compare", "Compare results across runs"),
    PageInfo("samples.py", "Single samples", "samples", "Single samples"),
)
