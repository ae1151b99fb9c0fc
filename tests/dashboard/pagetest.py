"""Helpers for the page tests: open a page of the real app with AppTest, read back what it shows."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import polars as pl
from streamlit.testing.v1 import AppTest

from dashboard import APP

PAGES = ("views/runs.py", "views/nnts.py", "views/nntp.py", "views/layers.py", "views/models.py", "views/samples.py")


def open_page(page: str, run: str | None = None) -> AppTest:
    """Run the app (with ?run=<run>) and switch to `page`, as a browser following a link would."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    if run is not None:
        at.query_params["run"] = run
    at.run()
    return at.switch_page(page).run()


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
