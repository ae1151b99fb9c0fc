"""Entry page of the nnts_ray dashboard: `nnts-ray-dashboard --runs DIR` serves it.

Thin on purpose: page setup, navigation and the run picker; each page lives in views/, all reads in
loaders.py. Run directly with `NNTS_RAY_RUNS=runs streamlit run dashboard/app.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts this file's folder on sys.path, not the one holding the `dashboard` package, and
# `python -m streamlit` puts the working directory first, where another `dashboard` folder may sit (a
# checkout next to this one): the package beside this file must win.
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[1])
if sys.path[:1] != [_PACKAGE_PARENT]:
    sys.path.insert(0, _PACKAGE_PARENT)

import streamlit as st  # noqa: E402

from dashboard import PAGES, widgets  # noqa: E402

VIEWS = Path(__file__).with_name("views")

st.set_page_config(page_title="nnts_ray", layout="wide")
page = st.navigation([st.Page(VIEWS / p.file, title=p.title, default=not p.url_path, url_path=p.url_path or None) for p in PAGES])
widgets.page_visit(page.url_path)
widgets.sidebar_run_picker()
page.run()
