"""Helpers for the page tests: open a page of the real app with AppTest, read back what it shows."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import polars as pl
from streamlit.testing.v1 import AppTest

from dashboard import APP
from dashboard import PAGES as PAGE_INFO

PAGES = tuple(f"views/{p.file}" for p in PAGE_INFO)


def open_page(page: str, run: str | None = None, **params: str) -> AppTest:
    """Run the app (with ?run=<run> and other query parameters) and switch to `page`, as a link would."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    for name, value in {**({"run": run} if run is not None else {}), **params}.items():
        at.query_params[name] = value
    at.run()
    return at.switch_page(page).run()


def widget(at: AppTest, kind: str, label: str) -> Any:
    """The one widget of `kind` (selectbox, radio, …) whose label starts with `label`."""
    (found,) = [w for w in getattr(at, kind) if w.label.startswith(label)]
    return found


def texts(at: AppTest) -> list[str]:
    """Titles, headers, captions and messages of the page, as shown."""
    kinds = ("title", "header", "subheader", "caption", "markdown", "error", "warning", "info")
    return [str(e.value) for kind in kinds for e in getattr(at, kind)]


def messages(at: AppTest) -> dict[str, list[str]]:
    return {kind: [str(e.value) for e in getattr(at, kind)] for kind in ("error", "warning", "info")}


def figures(at: AppTest) -> list[dict[str, Any]]:
    """The Plotly figure specs on the page, in page order."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def array(value: Any) -> np.ndarray:
    """A trace array as Plotly serialises it: a list, or typed base64 ('bdata') with a shape."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return flat.reshape([int(s) for s in str(value["shape"]).split(",")]) if "shape" in value else flat
    return np.array(value, dtype=float)


def dataframe(at: AppTest, index: int) -> pl.DataFrame:
    return pl.from_pandas(at.dataframe[index].value)
