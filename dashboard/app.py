"""Entry page of the nnts_ray dashboard: `nnts-ray-dashboard --runs DIR` serves it.

Thin on purpose: page setup, navigation and the run picker; each page lives in views/, all reads in
loaders.py. Run directly with `NNTS_RAY_RUNS=runs streamlit run dashboard/app.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts this file's folder on sys.path, not the one holding the `dashboard` package.
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[1])
if _PACKAGE_PARENT not in sys.path:
    sys.path.insert(0, _PACKAGE_PARENT)

import streamlit as st  # noqa: E402

from dashboard import widgets  # noqa: E402

VIEWS = Path(__file__).with_name("views")
PAGES = [
    st.Page(VIEWS / "runs.py", title="Runs", default=True),
    st.Page(VIEWS / "nnts.py", title="NNTS"),
    st.Page(VIEWS / "nntp.py", title="NNTP"),
    st.Page(VIEWS / "layers.py", title="Per layer"),
    st.Page(VIEWS / "models.py", title="Across models"),
    st.Page(VIEWS / "samples.py", title="Single samples"),
]

st.set_page_config(page_title="nnts_ray", layout="wide")
page = st.navigation(PAGES)
widgets.sidebar_run_picker()
page.run()
