"""Click-throughs from a chart to the samples behind it: a click opens Single samples with the settings
that select those samples in the URL, so the target page, a reload and a shared link all agree."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import sample_choice
from dashboard.figures.similarity import step_label
from dashboard.run import Run

SAMPLES_PAGE = "views/samples.py"


def samples_link(run: Run, model: str, k: int, layer_a: str, layer_b: str, label: object, how: str = sample_choice.MOST_CHANGED) -> dict[str, str]:
    """Query parameters of Single samples listing one class's samples of a pair of probe points."""
    return {"run": run.name, "model": model, "k": str(k), "pair": f"{layer_a},{layer_b}", "class": str(label), "how": how}


def from_per_class(run: Run, model: str, k: int, point: dict[str, Any] | None) -> None:
    """A clicked cell (class, step a → b) of the per-class heatmap opens that class's most changed samples."""
    if point is None:
        return
    order = run.layers(model)
    steps = {step_label(a, b): (a, b) for a, b in zip(order[:-1], order[1:])}
    if (step := steps.get(point.get("x"))) is None:
        return
    st.switch_page(SAMPLES_PAGE, query_params=samples_link(run, model, k, *step, point.get("y")))
