"""What a case did to the file system and what it said: file-tree snapshots, the tables of a run
compared with a clean run (rows lost), and the reading of its output (the error line, tracebacks,
error-level lines)."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

# ------------------------------------------------------------------ files


def snapshot(root: Path) -> dict[str, str]:
    """Every file and directory below `root` (links not followed): relative path -> content digest
    ("dir" for directories, "link:<target>" for links)."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for current, dirs, files in os.walk(root):
        base = Path(current)
        for d in dirs:
            p = base / d
            out[p.relative_to(root).as_posix()] = f"link:{os.readlink(p)}" if p.is_symlink() else "dir"
        for f in files:
            p = base / f
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = f"link:{os.readlink(p)}"
                continue
            try:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            except OSError as e:
                out[rel] = f"unreadable:{e.errno}"
    return out


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Paths created (+), changed (~) or removed (-) between two snapshots; directories only when
    created or removed empty-handed."""
    out = [f"+{p}" for p in after if p not in before and after[p] != "dir"]
    out += [f"~{p}" for p in after if p in before and before[p] != after[p]]
    out += [f"-{p}" for p in before if p not in after and before[p] != "dir"]
    made_dirs = [p for p in after if p not in before and after[p] == "dir"]
    out += [f"+{p}/" for p in made_dirs if not any(c.startswith(p + "/") for c in out)]
    return sorted(out)


# ------------------------------------------------------------------ tables of a run


def run_tables(run_dir: Path) -> dict[str, pl.DataFrame | str]:
    """Every Parquet table of a run: samples, metrics/<name>, neighbours/<model>/<layer> (all parts
    of one probe point as one table). A table that cannot be read maps to the reason."""
    run_dir = Path(run_dir)
    found: dict[str, list[Path]] = {}
    if (run_dir / "samples.parquet").exists():
        found["samples"] = [run_dir / "samples.parquet"]
    for p in sorted((run_dir / "metrics").glob("*.parquet")):
        found[f"metrics/{p.stem}"] = [p]
    for layer in sorted((run_dir / "neighbours").glob("model=*/layer=*")):
        key = f"neighbours/{layer.parent.name.removeprefix('model=')}/{layer.name.removeprefix('layer=')}"
        found[key] = sorted(layer.glob("*.parquet"))
    out: dict[str, pl.DataFrame | str] = {}
    for name, files in found.items():
        try:
            out[name] = pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame()
        except Exception as e:  # noqa: BLE001 — any unreadable table is a finding, not a harness error
            out[name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return out


def _row_hashes(frame: pl.DataFrame, like: pl.DataFrame) -> pl.DataFrame | None:
    """Row hashes of `frame` in `like`'s columns and types (None when it lacks them)."""
    try:
        aligned = frame.select([pl.col(c).cast(t) for c, t in like.schema.items()])
    except Exception:  # noqa: BLE001 — a missing column or another type: no row matches
        return None
    return aligned.hash_rows(seed=0).value_counts(name="n").with_columns(pl.col("n").cast(pl.Int64))


@dataclass(frozen=True)
class TableDiff:
    rows_lost: int  # rows of the clean run missing (or changed) in the case's run
    rows_extra: int  # rows the case's run holds that the clean run does not
    damaged: list[str]  # tables that differ, with what differs

    @property
    def preserved(self) -> bool:
        return self.rows_lost == 0 and self.rows_extra == 0 and not self.damaged


def compare_tables(clean: dict[str, pl.DataFrame | str], got: dict[str, pl.DataFrame | str],
                   only: tuple[str, ...] = ()) -> TableDiff:
    """Rows of each clean table absent from the same table of `got` (a row counts by its content,
    as a multiset); `only` restricts to tables whose name starts with one of these prefixes."""
    lost = extra = 0
    damaged = []
    for name, want in clean.items():
        if only and not name.startswith(only):
            continue
        assert isinstance(want, pl.DataFrame), f"the clean run's {name} is unreadable: {want}"
        have = got.get(name)
        if not isinstance(have, pl.DataFrame):
            lost += want.height
            damaged.append(f"{name}: {'missing' if have is None else have}")
            continue
        want_h, have_h = _row_hashes(want, want), _row_hashes(have, want)
        if have_h is None:
            lost += want.height
            damaged.append(f"{name}: columns {have.columns} != {want.columns}")
            continue
        joined = want_h.join(have_h, on=want_h.columns[0], how="full", coalesce=True, suffix="_got").fill_null(0)
        missing = int((joined["n"] - joined["n_got"]).clip(lower_bound=0).sum())
        surplus = int((joined["n_got"] - joined["n"]).clip(lower_bound=0).sum())
        if missing or surplus:
            lost, extra = lost + missing, extra + surplus
            damaged.append(f"{name}: {missing} rows lost, {surplus} extra")
    return TableDiff(lost, extra, damaged)


# ------------------------------------------------------------------ output

# Python's header, or a stack frame line: Ray forwards a worker's exception as "Exception raised in
# creation task: …" followed by its frames, without the header.
_TRACEBACK = re.compile(r'Traceback \(most recent call last\)|^(?:\(.*?pid=\d+\)\s*)?\s*File ".*", line \d+, in ', re.M)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# glog-style error/fatal lines of Ray's C++ core ("[2026-… E 123 123] core_worker.cc:…"), Python
# logging at ERROR/CRITICAL, and "error:" lines.
_ERROR_LEVEL = re.compile(r"^\[[^\]]*\s[EF]\s+\d+\s+\d+\]|\b(ERROR|CRITICAL|FATAL)\b|\berror:", re.M)
_WARNING_LEVEL = re.compile(r"\bWARNING\b|^\[[^\]]*\sW\s+\d+\s+\d+\]|Warning:", re.M)


def lines(text: str) -> list[str]:
    return [ln.rstrip() for ln in text.splitlines() if ln.strip()]


def has_traceback(text: str) -> bool:
    return bool(_TRACEBACK.search(_ANSI.sub("", text)))


_RAY_PREFIX = re.compile(r"^\((?:pid=\S+|[^()]*pid=\d+[^()]*)\)\s?")  # "(MapWorker(...) pid=123) " on worker lines
_NOISE = ("Error executing job with overrides", "Set the environment variable HYDRA_FULL_ERROR")  # Hydra's own
_EXCEPTION = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?::\s|$)")  # "pkg.mod.Name: message" or "Name"


def error_line(stdout: str, stderr: str) -> str:
    """The line a user reads as the reason: the product's "<prog>: error: …" line; after a traceback
    the exception it ends with; else the first stderr line that says "error"; else the last stderr
    line that is not a warning, else the last line of stdout. Hydra's wrapper lines, traceback
    frames and Ray's worker lines are passed over."""
    err = [_ANSI.sub("", ln) for ln in lines(stderr)]
    own = [ln for ln in err if re.match(r"^[\w-]+: error: ", ln)]
    if own:
        return own[0].strip()
    driver = [ln for ln in err if not ln[:1].isspace() and not _RAY_PREFIX.match(ln) and not ln.startswith(_NOISE)]
    if has_traceback(stderr):
        raised = [ln for ln in driver if _EXCEPTION.match(ln) and not ln.startswith("Traceback")]
        if raised:
            return raised[-1].strip()
    for ln in driver:
        if "error" in ln.lower():
            return ln.strip()
    quiet = [ln for ln in driver if not _WARNING_LEVEL.search(ln)]
    if quiet:
        return quiet[-1].strip()
    out = lines(stdout)
    return _ANSI.sub("", out[-1]).strip() if out else ""


def error_level_lines(text: str) -> list[str]:
    return [ln for ln in lines(text) if _ERROR_LEVEL.search(ln)]


def warning_lines(text: str) -> list[str]:
    return [ln for ln in lines(text) if _WARNING_LEVEL.search(ln)]


def mentions(line: str, token: str) -> bool:
    """`token` appears in `line` as a whole value (not inside a longer word or number)."""
    return re.search(rf"(?<![\w]){re.escape(token)}(?![\w])", line, re.I) is not None
