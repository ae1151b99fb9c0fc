"""Atomic writes (every file appears whole or not at all: tmp in the same directory, then rename),
completion markers that vouch for the files they name (size and digest), and the run-directory lock."""

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

from nnts_ray.config import ConfigError


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


def mark_files(marker: str | Path, files: dict[str, str | Path], info: dict | None = None,
               inputs: str | None = None) -> None:
    """A completion marker that records the size and content digest of each file it vouches for, and
    (`inputs`) a digest of what they were made from, so that changed inputs invalidate it."""
    from nnts_ray import digest

    record = {**(info or {}), "files": {name: digest.file(path) for name, path in files.items()}}
    if inputs is not None:
        record["inputs"] = inputs
    write_json(record, marker)


def check_marker(marker: str | Path, files: dict[str, str | Path], inputs: str | None = None
                 ) -> tuple[dict | None, list[str]]:
    """(the marker's record, []) when the marker exists, every file still has its recorded size and
    digest and (given) the record was made from `inputs`; else (None, what is wrong) — empty when
    there simply is no marker yet (nothing was done, so nothing is redone)."""
    from nnts_ray import digest

    marker = Path(marker)
    if not marker.is_file():
        return None, []
    try:
        record = read_json(marker)
    except (OSError, ValueError):
        return None, [f"{marker.name} is not readable"]
    recorded = record.get("files") if isinstance(record, dict) else None
    if not isinstance(recorded, dict) or set(recorded) != set(files):
        return None, [f"{marker.name} does not list its files"]
    if inputs is not None and record.get("inputs") != inputs:
        return None, ["its inputs changed"]
    problems = []
    for name, path in files.items():
        p = Path(path)
        if not p.is_file():
            problems.append(f"{name} is missing")
        elif p.stat().st_size != recorded[name].get("size"):
            problems.append(f"{name} has {p.stat().st_size} bytes, {recorded[name].get('size')} recorded")
        elif digest.file(p)["sha256"] != recorded[name].get("sha256"):
            problems.append(f"{name} differs from its recorded content")
    return (None, problems) if problems else (record, [])


def say_redone(what: str, problems: list[str]) -> None:
    """One line naming work that was recorded as finished but failed its check, and is redone."""
    if problems:
        from nnts_ray.progress import log

        log(f"{what}: redoing it, the finished copy failed its check ({'; '.join(problems[:3])})")


def verified(marker: str | Path, files: dict[str, str | Path], inputs: str | None = None) -> dict | None:
    """The marker's record when everything it vouches for is intact (see `check_marker`), else None."""
    return check_marker(marker, files, inputs)[0]


def record_digest(*markers: str | Path) -> str:
    """A digest of completion records: what a later stage's work was made from."""
    import hashlib

    h = hashlib.sha256()
    for m in markers:
        h.update(Path(m).read_bytes() if Path(m).is_file() else b"missing")
    return h.hexdigest()


class RunLock:
    """An exclusive lock on a run directory: a flock on the directory itself, so taking it writes
    nothing (re-running a finished run leaves it byte-for-byte as it was).

    The kernel releases a flock when its process dies, however it dies, so a lock left by a killed
    run is simply taken over; a live owner makes `acquire` fail naming its pid (from /proc/locks)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _flock_owner(os.fstat(fd).st_ino) or "unknown"
            os.close(fd)
            raise RunDirInUse(f"run_dir={str(self.root)!r} is in use by pid {owner}; wait for that run "
                              "to finish or choose another run_dir") from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _flock_owner(inode: int) -> str | None:
    """The pid holding a flock on `inode`, from /proc/locks (Linux; None where it cannot be read)."""
    try:
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()  # "1: FLOCK ADVISORY WRITE <pid> <maj>:<min>:<inode> 0 EOF"
            if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode):
                return fields[4]
    except OSError:
        pass
    return None


class RunDirInUse(ConfigError):
    """Another live process holds the run directory's lock (one line for the user, like bad input)."""
