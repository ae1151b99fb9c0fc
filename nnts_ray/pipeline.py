"""One analysis run: the plan, then the list of stages, each `(plan, run paths) -> manifest facts`.

Everything that can be checked without writing is checked while the plan is made, before the run
directory is touched; the directory is then locked against a second process, and every stage verifies
what earlier attempts left (size and digest of each file it vouches for) and redoes only what is
missing or damaged.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from nnts_ray import cluster
from nnts_ray.config import ConfigError, RunConfig
from nnts_ray.io import RunLock
from nnts_ray.manifest import Manifest
from nnts_ray.naming import RunPaths
from nnts_ray.plan import RunPlan, make_plan
from nnts_ray.stages import activations, metrics, models, neighbours, samples

Stage = Callable[[RunPlan, RunPaths], dict]
STAGES: tuple[tuple[str, Stage], ...] = (
    ("samples", samples.run),
    ("models", models.run),
    ("activations", activations.run),
    ("neighbours", neighbours.run),
    ("metrics", metrics.run),
)


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    already_complete: bool  # a finished run, found intact: nothing was done


def run(rc: RunConfig) -> RunResult:
    return execute(make_plan(rc))


def check_writable_dir(key: str, path: Path) -> None:
    """`path` must be a directory we can write into, or be creatable."""
    where = f"{key}={str(path)!r}"
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{where} is a file, not a directory; choose a directory path")
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ConfigError(f"{where} lies under the file {str(existing)!r}; choose a directory path")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{where} is not writable ({existing} does not allow it); choose another {key}")


def preflight(plan: RunPlan, paths: RunPaths) -> None:
    """What the machine must offer, checked before anything is written: the run and cache directories
    and a reachable `ray.address`."""
    check_writable_dir("run_dir", paths.root)
    if any(mp.config.train.enabled and not mp.config.checkpoint for mp in plan.models):  # the training cache
        check_writable_dir("paths.cache_dir", Path(plan.config.paths.cache_dir))
    cluster.check_address(plan.config.ray)


def _markers(paths: RunPaths) -> dict[Path, int]:
    state = paths.root / "_state"
    return {p: p.stat().st_mtime_ns for p in state.rglob("*.done")} if state.is_dir() else {}


def execute(plan: RunPlan) -> RunResult:
    paths = RunPaths(plan.config.run_dir)
    preflight(plan, paths)
    try:
        lock = RunLock(paths.root)
        lock.acquire()
    except OSError as e:
        if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise ConfigError(f"run_dir={str(paths.root)!r} is not writable ({e.strerror}); choose another run_dir") from None
        raise
    try:
        manifest = Manifest.open(paths, plan)
        was_complete, before = manifest.status == "complete", _markers(paths)
        try:
            for name, stage in STAGES:
                if was_complete:  # a finished run is only verified: nothing is written unless repaired
                    _repair(manifest, name, stage, plan, paths)
                else:
                    with manifest.stage(name):
                        manifest.record(stage(plan, paths))
        except BaseException as e:
            manifest.set(status="failed", error=f"{type(e).__name__}: {e}")
            raise
        intact = was_complete and _markers(paths) == before
        if not intact:
            if not plan.config.keep_activations:  # only once every table that needs them is written
                activations.release(plan, paths)
            shutil.rmtree(paths.work, ignore_errors=True)
            manifest.set(status="complete", error=None)
        return RunResult(paths.root, already_complete=intact)
    finally:
        lock.release()


def _repair(manifest: Manifest, name: str, stage: Stage, plan: RunPlan, paths: RunPaths) -> None:
    """Run one stage of a finished run; the manifest records it only when the stage redid something."""
    t0, before = time.perf_counter(), _markers(paths)
    facts = stage(plan, paths)
    if _markers(paths) != before:
        manifest.data["stages"][name] = {"status": "complete", "seconds": round(time.perf_counter() - t0, 3),
                                         "repaired": True}
        manifest.record(facts)
        manifest.save()
