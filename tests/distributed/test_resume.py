"""A run killed (SIGKILL, no clean-up) while the neighbours stage writes its parts resumes: the same
command skips every finished stage and part, and ends with the tables of an uninterrupted run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from nnts_ray.io import read_json
from nnts_ray.naming import RunPaths
from tests.distributed.helpers import (
    PARTS_PER_LAYER, assert_same_results, console_script, only_parquet_in_hive_trees, overrides, part_file,
    part_markers, wait_for,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow]

DONE_LINE = re.compile(r"neighbours \(.*\): (\d+)/(\d+) parts in \S+(?: \((\d+) done before\))?")


def _env() -> dict:
    return {**os.environ, "PYTHONWARNINGS": "ignore"}


def _kill_while_searching(args: list[str], paths: RunPaths, log: Path) -> None:
    """Start `nnts-ray <args>` and SIGKILL it once the first probe point's neighbours are done and
    the second's are being written."""
    with open(log, "w") as out:
        proc = subprocess.Popen([console_script("nnts-ray"), *args], stdout=out, stderr=subprocess.STDOUT, env=_env())
        try:
            first_done = paths.marker("neighbours", "lenet5", "input")  # parts of later probe points are in flight
            wait_for(lambda: (first_done.is_file() and len(part_markers(paths)) > PARTS_PER_LAYER + 1)
                     or proc.poll() is not None, timeout=300, what="neighbour parts of the first run")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, log.read_text()[-3000:]


def _mtimes(files: list[Path]) -> dict[Path, int]:
    return {f: f.stat().st_mtime_ns for f in files}


def test_killed_run_resumes_skipping_finished_work(ray_cluster, reference_run, model_cache, tmp_path):
    paths = RunPaths(tmp_path / "run")
    args = overrides(paths.root, model_cache, f"ray.address={ray_cluster.get_runtime_context().gcs_address}",
                     reuse=reference_run)  # activations linked: the first run soon reaches the neighbours
    _kill_while_searching(args, paths, tmp_path / "killed.log")

    assert read_json(paths.manifest)["status"] == "running"
    layers = [p["layer"] for p in read_json(paths.manifest)["models"]["lenet5"]["probe_points"]]
    done_parts = part_markers(paths)
    total = len(layers) * PARTS_PER_LAYER
    assert PARTS_PER_LAYER < len(done_parts) < total
    finished = _mtimes([*done_parts, *(part_file(paths, m) for m in done_parts),
                        paths.marker("neighbours", "lenet5", "input"), paths.marker("activations", "lenet5"),
                        *paths.root.glob("activations/*/*/features.npy"), paths.samples, paths.model_weights("lenet5")])
    unfinished = next(l for l in layers if not paths.marker("neighbours", "lenet5", l).is_file())
    leftover = paths.neighbours_dir("lenet5", unfinished) / ".part-00000.parquet.killed.tmp"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"PAR1")  # what a writer killed inside io.atomic_path leaves behind

    again = subprocess.run([console_script("nnts-ray"), *args], capture_output=True, text=True, timeout=600,
                           env=_env())
    assert again.returncode == 0, again.stderr[-3000:]
    assert _mtimes(list(finished)) == finished  # finished parts, stages and their markers were not redone
    (_, parts, before), = DONE_LINE.findall(again.stderr)
    assert int(parts) == total and int(before or 0) == len(done_parts), again.stderr[-3000:]  # only missing parts
    assert "activations lenet5:" not in again.stderr  # the activations stage was skipped
    manifest = read_json(paths.manifest)
    assert manifest["status"] == "complete"
    assert all(s["status"] == "complete" for s in manifest["stages"].values())
    assert only_parquet_in_hive_trees(paths) == []  # the contract: hive trees hold Parquet files only
    assert_same_results(paths, reference_run)
