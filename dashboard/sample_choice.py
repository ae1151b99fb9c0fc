"""How the Single samples page chooses its sample: by class and id, at random, among the most changed
samples of a pair of probe points, or from a bin of that pair's per-sample Jaccard histogram.

Every way offers only sample ids the run holds (a subsampled run has gaps), and every list is computed
from the current model, k and pair, so a label never shows a number from an earlier choice.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np
import polars as pl
import streamlit as st

from dashboard import loaders, widgets
from dashboard.figures.samples import BINS, bin_of, bin_range, jaccard_histogram
from dashboard.run import Run

BY_CLASS, AT_RANDOM, MOST_CHANGED, BY_JACCARD = "by class and id", "at random", "most changed", "by Jaccard (histogram)"
HOWS = (BY_CLASS, AT_RANDOM, MOST_CHANGED, BY_JACCARD)
ALL_CLASSES = "all classes"
SHOWN_CHANGED = 20  # most changed samples listed


class Context(NamedTuple):
    """What a per-pair choice depends on: the options are rebuilt (under new widget keys) when it changes."""

    model: str
    k: int
    layer_a: str
    layer_b: str
    label: object

    @property
    def key(self) -> str:
        return "-".join(map(str, self))


def url_sample(ids: pl.Series) -> int | None:
    """?sample= when it names a sample of this run (on the first run of a page visit)."""
    raw = widgets.url_value("sample")
    return int(raw) if raw is not None and raw.lstrip("-").isdigit() and (ids == int(raw)).any() else None


def labels_of(samples: pl.DataFrame) -> list[object]:
    return sorted(samples["label"].drop_nulls().unique().to_list()) if "label" in samples.columns else []


def label_of(samples: pl.DataFrame, sample_id: int) -> object:
    return samples.filter(pl.col("sample_id") == sample_id)["label"].item() if "label" in samples.columns else None


def _class_filter(samples: pl.DataFrame, key: str, label: str, default: object = ALL_CLASSES) -> object:
    labels = labels_of(samples)
    return widgets.pick(label, [ALL_CLASSES, *labels], key, param="class", default=default) if labels else ALL_CLASSES


def _in_class(frame: pl.DataFrame, label: object) -> pl.DataFrame:
    return frame if label == ALL_CLASSES else frame.filter(pl.col("label") == label)


def _by_class(samples: pl.DataFrame) -> int:
    """A class (the one of ?sample= on a fresh page), then an id among that class's samples."""
    from_url = url_sample(samples["sample_id"])
    left, right = st.columns(2)
    with left:
        label = _class_filter(samples, "samples-class", "Class", default=label_of(samples, from_url) if from_url is not None else ALL_CLASSES)
    ids = _in_class(samples, label)["sample_id"].sort().to_list()
    return widgets.pick(f"Sample id ({len(ids):,} in {label if label == ALL_CLASSES else f'class {label}'})", ids, "samples-id",
                        param="sample", format_func=lambda s: f"#{s}", where=right)


def _at_random(samples: pl.DataFrame) -> int:
    ids = samples["sample_id"]
    if st.session_state.get("samples-random") not in set(ids.to_list()):
        from_url = url_sample(ids)
        st.session_state["samples-random"] = from_url if from_url is not None else int(ids.sample(1, seed=0).item())
    if st.button("Draw another sample"):
        st.session_state["samples-random"] = int(np.random.default_rng().choice(ids.to_numpy()))
    sample_id = int(st.session_state["samples-random"])
    widgets.remember("sample", sample_id)
    return sample_id


def _pair(order: list[str]) -> tuple[str, str]:
    """Two probe points (default: first and last), kept in the URL as ?pair=a,b."""
    wanted = (widgets.url_value("pair") or "").split(",")
    a, b = wanted if len(wanted) == 2 else (order[0], order[-1])
    left, right = st.columns(2)
    layer_a = widgets.pick("Between probe point", order, "samples-layer-a", default=a, where=left)
    layer_b = widgets.pick("and probe point", order, "samples-layer-b", default=b, where=right)
    widgets.remember("pair", [layer_a, layer_b])
    return layer_a, layer_b


def _pick_listed(values: pl.DataFrame, context: Context, what: str, label: str) -> int:
    """One of the listed samples, labelled with its Jaccard for the current context."""
    jaccard = dict(values.select("sample_id", "jaccard").iter_rows())
    return widgets.pick(label, list(jaccard), f"samples-{what}-{context.key}", param="sample",
                        format_func=lambda s: f"#{s} (Jaccard {jaccard[s]:.3f})")


def _from_histogram(run: Run, values: pl.DataFrame, context: Context, chance: float | None) -> int:
    """The pair's per-sample Jaccard histogram; a clicked bar (or the bin box) lists its samples."""
    name = widgets.export_name(run, "jaccard-histogram", context.model, context.layer_a, context.layer_b, f"k{context.k}")
    title = run.title(f"Per-sample Jaccard, {context.layer_a} → {context.layer_b}", context.model, context.k)
    if context.label != ALL_CLASSES:
        title += f" · class {context.label}"
    event = widgets.show_figure(jaccard_histogram(values["jaccard"].to_numpy(), chance), name, title, on_select=True)
    bins = bin_of(values["jaccard"].to_numpy())
    counts = np.bincount(bins, minlength=BINS)
    filled = sorted(set(bins.tolist()))
    point = widgets.clicked_point(event)
    key = f"samples-bin-{context.key}"
    if point is not None and point.get("point_index") in filled and st.session_state.get(f"{key}-click") != point["point_index"]:
        st.session_state[key] = st.session_state[f"{key}-click"] = point["point_index"]  # a new click moves the bin box
    chosen = widgets.pick("Jaccard bin (or click a bar)", filled, key, format_func=lambda i: f"{bin_range(i)} · {counts[i]:,} samples")
    return _pick_listed(values.filter(pl.Series(bins) == chosen), context, f"bin{chosen}", "Sample in the bin")


def _chance(run: Run, context: Context) -> float | None:
    """The analytic chance level of the pair's Jaccard, from metrics/nnts.parquet where present."""
    try:
        nnts = loaders.table(run.path, "nnts")
    except loaders.DataError:
        return None
    rows = nnts.filter((pl.col("model_a") == context.model) & (pl.col("model_b") == context.model) & (pl.col("k") == context.k))
    return rows["chance_jaccard"][0] if rows.height else None


def _by_pair(run: Run, samples: pl.DataFrame, model: str, k: int, how: str) -> int:
    layer_a, layer_b = _pair(run.layers(model))
    label = _class_filter(samples, "samples-class-filter", "Only class")
    context = Context(model, k, layer_a, layer_b, label)
    loaded = widgets.guarded(run, "Per-sample NNTS", partial(loaders.pair_values, run.path, model, k, layer_a, layer_b))
    if loaded is None:
        st.stop()
    values, every = loaded
    if "label" in samples.columns:
        values = values.join(samples.select("sample_id", "label"), on="sample_id", how="left", validate="1:1")
    values = _in_class(values, label)
    if values.is_empty():
        st.info(f"No per-sample values of {model} for {layer_a} → {layer_b} at k = {k}"
                + ("" if label == ALL_CLASSES else f" in class {label}") + " in this run.")
        st.stop()
    if how == MOST_CHANGED:
        return _pick_listed(values.head(SHOWN_CHANGED), context, "changed", "Most changed (lowest Jaccard first)")
    if not every:
        st.info("This run has no metrics/per_sample.parquet: the histogram needs every sample's value; "
                "only the most changed samples of consecutive probe points are listed.")
        return _pick_listed(values, context, "changed", "Most changed (lowest Jaccard first)")
    return _from_histogram(run, values, context, _chance(run, context))


def choose(run: Run, samples: pl.DataFrame, model: str, k: int) -> int:
    """The chosen sample id (always one of samples.parquet), kept in the URL as ?sample=."""
    how = widgets.pick_radio("Choose a sample", HOWS, "samples-how", param="how")
    if how == BY_CLASS:
        return _by_class(samples)
    if how == AT_RANDOM:
        return _at_random(samples)
    return _by_pair(run, samples, model, k, how)
