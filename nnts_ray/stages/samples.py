"""Stage 1: the loaded samples → samples.parquet (ids, labels, thumbnails). The model inputs the
activation actors read are a work file, `_work/inputs-<digest>.npy`, made when they are needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnts_ray.io import check_marker, mark_files, say_redone, verified, write_npy, write_parquet
from nnts_ray.naming import RunPaths
from nnts_ray.plan import RunPlan
from nnts_ray.progress import log


def run(plan: RunPlan, paths: RunPaths) -> dict:
    data = plan.data
    record, problems = check_marker(paths.marker("samples"), {"samples": paths.samples}, data.digest)
    if record is None:
        say_redone("samples", problems)
        write_parquet(plan.source.table(), paths.samples)
        mark_files(paths.marker("samples"), {"samples": paths.samples}, {"n": data.n}, data.digest)
        log(f"samples: {data.n} from {data.name} -> {paths.samples}")
    return {"n_samples": data.n, "dataset": {"name": data.name, "n": data.n, "channels": data.channels,
                                             "image_size": data.image_size, "digest": data.digest}}


def ensure_inputs(plan: RunPlan, paths: RunPaths) -> Path:
    """The model inputs as (n, C, H, W) float32 in sample order, written unless intact already."""
    out = paths.inputs(plan.data.digest)
    marker = paths.marker("samples", "inputs")
    if not verified(marker, {"inputs": out}, plan.data.digest):
        write_npy(np.ascontiguousarray(plan.source.images, dtype=np.float32), out)
        mark_files(marker, {"inputs": out}, inputs=plan.data.digest)
    return out
