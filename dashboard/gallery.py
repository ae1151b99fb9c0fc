"""A sample's nearest neighbours at each probe point, with the ones that persist marked (pure functions)."""

from __future__ import annotations

import base64
import html
from typing import Sequence

import polars as pl

_TILE = "display:inline-block;margin:2px;text-align:center;font:11px sans-serif;width:60px"
_IMG = "width:48px;height:48px;image-rendering:pixelated;border:3px solid {colour}"
_KEPT, _EVERYWHERE, _NEW = "#f0a500", "#2e7d32", "transparent"
LEGEND = "Border: green = a neighbour at every probe point shown; orange = also a neighbour at the previous probe point."


def neighbour_table(neighbours: pl.DataFrame, order: Sequence[str], samples: pl.DataFrame) -> pl.DataFrame:
    """neighbours (layer, rank, neighbour_id, distance) of one sample, in chain order, with its label and
    `kept` (also a neighbour at the previous probe point) and `everywhere` (a neighbour at every probe point)."""
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
        )
        .sort("position", "rank")
        .select("layer", "position", "rank", "neighbour_id", "label", "distance", "kept", "everywhere")
    )


def _tile(sample_id: int, label: object, png: bytes | None, colour: str) -> str:
    caption = f"#{sample_id}" + ("" if label is None else f" · {label}")
    if png:
        image = f'<img alt="sample {sample_id}" src="data:image/png;base64,{base64.b64encode(png).decode()}" style="{_IMG.format(colour=colour)}">'
    else:
        image = f'<div style="{_IMG.format(colour=colour)};display:inline-block;background:#ddd;line-height:48px">–</div>'
    return f'<div style="{_TILE}">{image}<br>{html.escape(caption)}</div>'


def gallery_html(sample_id: int, label: object, table: pl.DataFrame, thumbnails: dict[int, bytes | None], per_layer: int) -> str:
    """The sample, then one row per probe point of its first `per_layer` neighbours; images missing
    from samples.parquet are shown as grey placeholders."""
    parts = [f"<div><b>Sample</b> {_tile(sample_id, label, thumbnails.get(sample_id), _NEW)}</div>"]
    for (layer,), rows in table.filter(pl.col("rank") < per_layer).group_by("layer", maintain_order=True):
        tiles = "".join(
            _tile(r["neighbour_id"], r["label"], thumbnails.get(r["neighbour_id"]), _EVERYWHERE if r["everywhere"] else _KEPT if r["kept"] else _NEW)
            for r in rows.iter_rows(named=True)
        )
        parts.append(f'<div style="margin-top:6px"><div style="font:bold 12px sans-serif">{html.escape(str(layer))}</div>{tiles}</div>')
    return "\n".join(parts)
