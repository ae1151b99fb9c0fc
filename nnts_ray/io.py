"""Atomic writes: every file appears whole or not at all (tmp in the same directory, then rename)."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_parquet(table: pa.Table, path: str | Path, schema: pa.Schema | None = None,
                  groups: list[int] | None = None, **options: Any) -> None:
    """Write atomically; with `schema`, its columns first in its types (extra columns kept after);
    string columns are always plain `string` (Polars hands out `large_string`). `groups`: row
    counts at which row groups must end (each slice is written on its own; larger ones split)."""
    if schema is not None:
        extra = [c for c in table.column_names if c not in schema.names]
        table = table.select(schema.names + extra)
    fields = [schema.field(f.name) if schema is not None and f.name in schema.names
              else pa.field(f.name, pa.string()) if f.type == pa.large_string() else f for f in table.schema]
    table = table.cast(pa.schema(fields))
    with atomic_path(path) as tmp:
        if not groups:
            pq.write_table(table, tmp, compression="zstd", **options)
            return
        with pq.ParquetWriter(tmp, table.schema, compression="zstd", **options) as writer:
            start = 0
            for rows in groups:
                writer.write_table(table.slice(start, rows))
                start += rows
            assert start == table.num_rows, (start, table.num_rows)


def write_json(obj: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def write_npy(array: np.ndarray, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


def mark_done(path: str | Path, info: dict | None = None) -> None:
    write_json(info or {}, path)
