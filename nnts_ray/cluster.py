"""Connecting to Ray — within a bounded time — and deciding where work runs (GPU actors where the
cluster has GPUs). One session per process: every stage that needs Ray shares it."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Callable

from nnts_ray.config import ConfigError, RayConfig
from nnts_ray.progress import log


@dataclass(frozen=True)
class Resources:
    cpus: int
    gpus: int

    @property
    def device(self) -> str:
        return "cuda" if self.gpus > 0 else "cpu"


@dataclass(frozen=True)
class Cluster:
    resources: Resources
    actors: int  # actors per pool: one per GPU, else one per CPU (each actor's BLAS runs one thread)

    def facts(self) -> dict:
        r = self.resources
        return {"cpus": r.cpus, "gpus": r.gpus, "device": r.device, "actors": self.actors}


_session: Cluster | None = None


def check_address(cfg: RayConfig) -> None:
    """Refuse a `ray.address` host:port (or ray://host:port) nobody listens on, in at most
    `ray.connect_timeout_s` — before the run writes anything. `auto` and a session this process
    already holds are left to Ray."""
    import ray

    if cfg.address and cfg.address != "auto" and not ray.is_initialized():
        _reachable(cfg.address, cfg.connect_timeout_s)


def _reachable(address: str, timeout: float) -> None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise ConfigError(f"ray.address={address!r} cannot be reached ({e.strerror or e}); start the cluster "
                          f"(ray start --head) or give ray.address=null for a local one") from None


def _init(cfg: RayConfig) -> None:
    import ray

    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    # Ray's notice that token authentication is on (Ray >= 2.5x, local clusters): expected, not a warning
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    kwargs = dict(include_dashboard=cfg.include_dashboard, log_to_driver=True, configure_logging=True,
                  logging_level="warning")
    if cfg.address:
        check_address(cfg)
        # bounds Ray's own reconnection attempts to a GCS that stops answering
        os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", str(int(max(1, cfg.connect_timeout_s))))
        kwargs["address"] = cfg.address
    else:
        kwargs.update(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus)
    where = f"ray.address={cfg.address!r}" if cfg.address else "a local Ray cluster"
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"could not connect to {where}: {first}") from None


def session(cfg: RayConfig) -> Cluster:
    """The process's Ray session: joins `ray.address` (or a cluster already initialised in this
    process), else starts a local one; refuses a cluster on which no actor could ever run."""
    global _session
    import ray

    if _session is not None and ray.is_initialized():
        return _session
    if not ray.is_initialized():
        _init(cfg)
    total = ray.cluster_resources()
    res = Resources(cpus=int(total.get("CPU", 0)), gpus=int(total.get("GPU", 0)))
    if res.cpus < 1 and res.gpus < 1:
        raise ConfigError("the Ray cluster offers no CPU and no GPU; actors could never start (check ray.num_cpus "
                          "or the cluster's resources)")
    actors = cfg.actors or max(1, res.gpus if res.gpus else res.cpus)
    _session = Cluster(res, actors)
    return _session


WAIT_NOTICE_S = 60.0  # silence before a run whose actors cannot start says why


def start_actors(cls: type, count: int, gpus: int, *args) -> list:
    """`count` restartable actors of `cls` (one GPU each on a GPU cluster, else one CPU each). Their
    constructor arguments are small plain values, passed inline: an actor killed mid-task is
    restarted from them and its task retried."""
    import ray

    remote = ray.remote(num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1, max_restarts=2,
                        max_task_retries=2)(cls)
    actors = [remote.remote(*args) for _ in range(count)]
    pending, waited = [a.__ray_ready__.remote() for a in actors], 0.0
    while pending:
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=WAIT_NOTICE_S)
        if pending:  # Ray queues actors until the cluster has room: on a busy shared cluster, say so
            waited += WAIT_NOTICE_S
            log(f"waiting {waited:.0f} s for {len(pending)} of {count} actors to start: the Ray cluster has no free "
                f"{'GPU' if gpus else 'CPU'} for them (other jobs hold them; see `ray status`)")
    return actors


def run_tasks(actors: list, tasks: list, submit: Callable, done: Callable, per_actor: int = 2) -> None:
    """Each task to the least busy actor (`submit(actor, task)` returns an object ref), at most
    `per_actor` in flight per actor; `done(task, result)` as each one finishes, in finishing order."""
    import ray

    queue, inflight, busy = list(tasks), {}, {i: 0 for i in range(len(actors))}
    while queue or inflight:
        while queue and len(inflight) < per_actor * len(actors):
            i = min(busy, key=busy.get)
            task = queue.pop(0)
            inflight[submit(actors[i], task)] = (task, i)
            busy[i] += 1
        ready, _ = ray.wait(list(inflight), num_returns=1)
        task, i = inflight.pop(ready[0])
        busy[i] -= 1
        done(task, ray.get(ready[0]))


def stop_actors(actors: list) -> None:
    import ray

    for a in actors:
        ray.kill(a)
