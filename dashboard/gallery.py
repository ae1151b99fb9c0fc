"""A sample's nearest neighbours at each probe point, with the ones that persist marked (pure functions)."""

from __future__ import annotations

import base64
import html
from typing import Sequence

import polars as pl

# 15 tiles and the probe-point name fit one row of the wide layout on a 1400 px window.
_TILE = "flex:0 0 auto;margin:1px;text-align:center;font:10px sans-serif;width:54px"
_IMG = "width:42px;height:42px;image-rendering:pixelated;border:3px solid {colour}"
_ROW = "display:flex;flex-wrap:nowrap;align-items:flex-start;overflow-x:auto;margin-top:6px"
_LAYER = "flex:0 0 56px;font:bold 12px sans-serif;padding-top:18px;overflow-wrap:anywhere"
_KEPT, _EVERYWHERE, _NEW = "#f0a500", "#2e7d32", "transparent"
LEGEND = ("Border: green = a neighbour at every probe point shown; orange = also a neighbour at the previous probe point. "
          "Red '≠' label: not the sample's class. d = distance to the sample at that probe point.")


def neighbour_table(neighbours: pl.DataFrame, order: Sequence[str], samples: pl.DataFrame, sample_label: object = None) -> pl.DataFrame:
    """neighbours (layer, rank, neighbour_id, distance) of one sample, in chain order, with its label,
    `other_class` (a label unlike `sample_label`), `kept` (also a neighbour at the previous probe point)
    and `everywhere` (a neighbour at every probe point)."""
    positions = pl.DataFrame({"layer": list(order), "position": range(len(order))}, schema={"layer": pl.String, "position": pl.Int64})
    rows = neighbours.join(positions, on="layer", how="inner", validate="m:1")
    previous = rows.select("neighbour_id", (pl.col("position") + 1).alias("position"), pl.lit(True).alias("kept")).unique()
    labels = samples.select(pl.col("sample_id").alias("neighbour_id"), pl.col("label") if "label" in samples.columns else pl.lit(None, pl.Int64).alias("label"))
    return (
        rows.join(previous, on=["neighbour_id", "position"], how="left")
        .join(labels.unique("neighbour_id"), on="neighbour_id", how="left")
        .with_columns(
            pl.col("kept").fill_null(False),
            (pl.len().over("neighbour_id") == rows["layer"].n_unique()).alias("everywhere"),
            (pl.col("label") != sample_label).fill_null(False).alias("other_class") if sample_label is not None else pl.lit(False).alias("other_class"),
        )
        .sort("position", "rank")
        .select("layer", "position", "rank", "neighbour_id", "label", "other_class", "distance", "kept", "everywhere")
    )


def _tile(sample_id: int, label: object, png: bytes | None, colour: str, distance: float | None = None, different: bool = False) -> str:
    """One image with '#id · label' and, for a neighbour, its distance; a label unlike the sample's in red."""
    mark = "≠" if different else ""
    caption = f"#{sample_id}" + ("" if label is None else f" · {mark}{label}")
    hover = f"sample {sample_id}" + ("" if label is None else f", class {label}") + (" — not the sample's class" if different else "")
    if distance is not None:
        hover += f", distance {distance:.4g}"
    if png:
        image = f'<img alt="sample {sample_id}" src="data:image/png;base64,{base64.b64encode(png).decode()}" style="{_IMG.format(colour=colour)}">'
    else:
        image = f'<div style="{_IMG.format(colour=colour)};display:inline-block;background:#ddd;line-height:42px">–</div>'
    style = _TILE + (";color:#c62828;font-weight:bold" if different else "")
    under = "" if distance is None else f'<br><span style="color:#666;font-weight:normal">d {distance:.3g}</span>'
    return f'<div class="tile" data-different="{int(different)}" title="{html.escape(hover)}" style="{style}">{image}<br>{html.escape(caption)}{under}</div>'


def gallery_html(sample_id: int, label: object, table: pl.DataFrame, thumbnails: dict[int, bytes | None], per_layer: int) -> str:
    """The sample, then one row per probe point of its first `per_layer` neighbours (never wrapped: a row
    scrolls sideways instead); images missing from samples.parquet are shown as grey placeholders."""
    parts = [f'<div style="display:flex;align-items:center;gap:8px"><b>Sample</b> {_tile(sample_id, label, thumbnails.get(sample_id), _NEW)}</div>']
    for (layer,), rows in table.filter(pl.col("rank") < per_layer).group_by("layer", maintain_order=True):
        tiles = "".join(
            _tile(r["neighbour_id"], r["label"], thumbnails.get(r["neighbour_id"]), _EVERYWHERE if r["everywhere"] else _KEPT if r["kept"] else _NEW,
                  r["distance"], r["other_class"])
            for r in rows.iter_rows(named=True)
        )
        parts.append(f'<div class="probe-row" style="{_ROW}"><div style="{_LAYER}">{html.escape(str(layer))}</div>{tiles}</div>')
    return "\n".join(parts)
