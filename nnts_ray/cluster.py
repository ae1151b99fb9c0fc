"""Connecting to Ray and deciding where work runs (GPU actors where the cluster has GPUs)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from nnts_ray.config import RayConfig


@dataclass(frozen=True)
class Resources:
    cpus: int
    gpus: int

    @property
    def device(self) -> str:
        return "cuda" if self.gpus > 0 else "cpu"


def connect(cfg: RayConfig) -> Resources:
    """Join `ray.address` (or a cluster already initialised in this process), else start a local one."""
    import ray
    import ray.data

    if not ray.is_initialized():
        os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
        kwargs = dict(include_dashboard=cfg.include_dashboard, log_to_driver=True,
                      configure_logging=True, logging_level="warning")
        if cfg.address:
            ray.init(address=cfg.address, **kwargs)
        else:
            ray.init(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, **kwargs)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the pipeline logs its own progress lines
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    res = ray.cluster_resources()
    return Resources(cpus=int(res.get("CPU", 1)), gpus=int(res.get("GPU", 0)))


def actor_count(cfg: RayConfig, res: Resources) -> int:
    """One actor per GPU; on CPUs one per CPU (each actor's BLAS runs one thread)."""
    if cfg.actors:
        return cfg.actors
    return max(1, res.gpus if res.gpus else res.cpus)
