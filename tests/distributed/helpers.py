"""What the distributed tests share: one small configuration, the comparison of two run directories,
and finding / stopping Ray processes by the cluster they belong to (never by a broad name)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import polars as pl
import psutil
from polars.testing import assert_frame_equal

from nnts_ray.naming import RunPaths

N_SAMPLES, K_MAX, QUERY_BLOCK = 600, 20, 50
PARTS_PER_LAYER = N_SAMPLES // QUERY_BLOCK
# 600 = 12 batches of exactly 50 rows: batch composition never depends on scheduling.
SMALL = [f"dataset.n_samples={N_SAMPLES}", f"knn.query_block={QUERY_BLOCK}", f"k=[5,{K_MAX}]",
         "model.train.epochs=2", "model.batch_size=50"]


def overrides(run_dir: Path, cache_dir: Path, *extra: str, reuse: RunPaths | None = None) -> list[str]:
    """The small configuration every run of these tests uses (so all results must be identical).
    Activations are computed, unless `reuse` names a finished run to link them from (same data and
    weights): paths.runs_root is where a run looks for earlier activations."""
    runs_root = reuse.root.parent if reuse else run_dir.parent  # the latter holds no other run
    return [f"run_dir={run_dir}", f"paths.cache_dir={cache_dir}", f"paths.runs_root={runs_root}", *SMALL, *extra]


def console_script(name: str) -> str:
    """A console script of this environment (nnts-ray, ray), whatever PATH says."""
    return str(Path(sys.executable).with_name(name))


def part_markers(paths: RunPaths) -> list[Path]:
    """Completion markers of neighbour parts, `<model>__<layer>__part-<i>.done`."""
    return sorted((paths.root / "_state" / "neighbours").glob("*__part-*.done"))


def part_file(paths: RunPaths, marker: Path) -> Path:
    """The Parquet part a part marker stands for."""
    model, layer, part = marker.stem.split("__")
    return paths.neighbours_part(model, layer, int(part.removeprefix("part-")))


# ---------------------------------------------------------------- comparing two runs


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    """Rows in a canonical order: by every non-float column, then by the float ones."""
    flat = [c for c, t in df.schema.items() if not t.is_nested()]
    return df.sort(sorted(flat, key=lambda c: df.schema[c].is_float()))


# Columns computed by BLAS sums over the activations (CKA, the PCA map): their last bits follow the
# summation order, which follows the BLAS thread count (a Ray job's driver gets OMP_NUM_THREADS=1).
# Everything else is a function of neighbour ids and distances and must be bit-identical.
FROM_FEATURE_SUMS = {"cka", "pca_explained", "x", "y"}


def assert_same_results(got: RunPaths, want: RunPaths) -> None:
    """Neighbour tables (exactly n·k rows per probe point, none twice) and metrics tables identical."""
    layers = sorted(p.relative_to(want.neighbours_root) for p in want.neighbours_root.glob("model=*/layer=*"))
    assert layers and layers == sorted(p.relative_to(got.neighbours_root)
                                       for p in got.neighbours_root.glob("model=*/layer=*"))
    for layer in layers:
        a, b = (pl.read_parquet(r.neighbours_root / layer / "*.parquet") for r in (got, want))
        assert a.height == N_SAMPLES * K_MAX, (layer, a.height)
        assert a.select("sample_id", "rank").is_duplicated().sum() == 0, layer
        assert_frame_equal(a.sort("sample_id", "rank"), b.sort("sample_id", "rank"), check_exact=True)
    tables = sorted(p.name for p in want.metrics_dir.glob("*.parquet"))
    assert tables and tables == sorted(p.name for p in got.metrics_dir.glob("*.parquet"))
    for name in tables:
        a, b = (_sorted(pl.read_parquet(r.metrics_dir / name)) for r in (got, want))
        sums = [c for c in a.columns if c in FROM_FEATURE_SUMS]
        try:
            assert_frame_equal(a.drop(sums), b.drop(sums), check_exact=True)
            # CKA subtracts large float64 sums (unbiased HSIC): thread-count rounding shows at ~1e-8
            assert_frame_equal(a.select(sums), b.select(sums), check_exact=False, rel_tol=1e-6, abs_tol=1e-6)
        except AssertionError as e:
            raise AssertionError(f"metrics/{name}: {e}") from None


def assert_same_activations(got: RunPaths, want: RunPaths) -> None:
    files = sorted(p.relative_to(want.root) for p in (want.root / "activations").rglob("features.npy"))
    assert files and files == sorted(p.relative_to(got.root) for p in (got.root / "activations").rglob("features.npy"))
    for f in files:
        np.testing.assert_array_equal(np.load(got.root / f), np.load(want.root / f), err_msg=str(f))


def only_parquet_in_hive_trees(paths: RunPaths) -> list[Path]:
    """Files in neighbours/ that are not Parquet (the contract allows none)."""
    return [p for p in paths.neighbours_root.rglob("*") if p.is_file() and p.suffix != ".parquet"]


# ---------------------------------------------------------------- Ray processes


def raylets(gcs_address: str) -> list[psutil.Process]:
    """The raylet (one per node) of the cluster at `gcs_address`: it names its GCS on its command line."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if cmd and cmd[0].endswith("/raylet") and f"--gcs-address={gcs_address}" in cmd:
            found.append(p)
    return found


def actor_processes(nodes: list[psutil.Process], title: str) -> list[tuple[psutil.Process, str]]:
    """(process, its title) of the workers under these raylets whose title starts with `ray::<title>`.

    Every worker is a child of its node's raylet, and Ray names it after what it runs:
    `ray::ShardSearcher` idle, `ray::ShardSearcher.search` while searching."""
    found = []
    for raylet in nodes:
        try:
            children = raylet.children()
        except psutil.Error:
            continue
        for child in children:
            try:
                name = process_title(child)
            except psutil.Error:
                continue
            if name.startswith(f"ray::{title}"):
                found.append((child, name))
    return found


def process_title(p: psutil.Process) -> str:
    return " ".join(p.cmdline()).strip()


def stop_processes_mentioning(marker: str, grace: float = 5.0) -> None:
    """End every process whose command line names `marker` (a temp dir unique to one test cluster),
    with all its descendants (workers no longer show it once they rename themselves)."""
    roots = []
    for p in psutil.process_iter(["cmdline"]):
        if p.pid != os.getpid() and any(marker in a for a in (p.info["cmdline"] or [])):
            roots.append(p)
    family = set(roots)
    for p in roots:
        try:
            family.update(p.children(recursive=True))
        except psutil.Error:
            pass
    for p in family:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(list(family), timeout=grace)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass


def free_ports(n: int) -> list[int]:
    """n distinct ports that were free a moment ago (bound together, so never the same twice)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.01, stop: threading.Event | None = None):
    """Poll until `predicate()` is truthy and return its value; fail naming `what` on timeout (or
    as soon as `stop` is set)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (stop and stop.is_set()):
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{'stopped' if stop and stop.is_set() else f'timed out after {timeout:.0f}s'} "
                         f"waiting for {what}")
