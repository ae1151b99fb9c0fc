"""manifest.json: what a run is (config, conventions, versions, probe points) and how far it got.

A run directory belongs to one configuration (its fingerprint). Starting a different configuration
in a directory that holds one is refused before anything is written; the same configuration resumes
(or, when complete, is only reported)."""

from __future__ import annotations

import platform
import time
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

from nnts_ray.config import ConfigError, RunConfig
from nnts_ray.io import read_json, write_json
from nnts_ray.naming import RunPaths

FORMAT = "nnts_ray/1"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("nnts-ray", "torch", "torchvision", "ray", "faiss-cpu", "faiss-gpu", "polars", "pyarrow", "numpy",
                "hydra-core"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def conventions(rc: RunConfig) -> dict[str, Any]:
    exact = rc.knn.index == "exact"
    return {
        "metric": rc.knn.metric,
        "k": rc.k,
        "search_k": rc.k_max,
        "smaller_k": "prefixes of one search at the largest k",
        "self_exclusion": "by index (a sample is never its own neighbour; duplicates are kept)",
        "tie_rule": "(distance, neighbour sample_id) ascending",
        "dtype": "float32 features; GEMM distances in float32 (TF32/bf16 off)",
        "distance": "euclidean (not squared)" if rc.knn.metric == "l2" else "1 - cosine similarity",
        "refine_ranks": f"ranks < {rc.knn.refine_ranks} re-scored by direct differences" if rc.knn.refine_ranks else "none",
        "index": {"type": "exact" if exact else "approximate", "factory": None if exact else rc.knn.index,
                  "recall": 1.0 if exact else None},
        "nntp": {"connected": "union symmetrisation (i→j or j→i)", "k": rc.metrics.nntp_k, "alpha": rc.metrics.alpha},
        "jaccard": "mean over samples of |K_a ∩ K_b| / |K_a ∪ K_b|",
        "overlap": "mean over samples of |K_a ∩ K_b| / k",
        "chance": "jaccard k/(2(n-1)-k), overlap k/(n-1)",
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Manifest:
    def __init__(self, paths: RunPaths, data: dict[str, Any]):
        self.paths, self.data = paths, data

    @staticmethod
    def existing(paths: RunPaths, rc: RunConfig) -> dict | None:
        """The run's manifest when it is this configuration's, None for a new directory; anything
        else is refused before a byte is written."""
        if paths.manifest.is_file():
            data = read_json(paths.manifest)
            if data.get("fingerprint") != rc.fingerprint():
                raise ConfigError(
                    f"run_dir={str(paths.root)!r} holds a {data.get('status', 'unknown')} run of a different "
                    f"configuration; choose another run_dir (nothing was changed)"
                )
            return data
        if paths.root.exists() and any(paths.root.iterdir()):
            raise ConfigError(f"run_dir={str(paths.root)!r} is not empty and holds no nnts_ray run; choose another run_dir")
        return None

    @staticmethod
    def open(paths: RunPaths, rc: RunConfig, existing: dict | None) -> "Manifest":
        """Continue the checked manifest `existing` (see `Manifest.existing`) or start a new one."""
        if existing is not None:
            return Manifest(paths, existing)
        data = {
            "format": FORMAT, "status": "running", "fingerprint": rc.fingerprint(), "created": _now(),
            "updated": _now(), "error": None, "config": rc.to_dict(), "n_samples": None,
            "conventions": conventions(rc), "versions": versions(), "models": {}, "stages": {},
        }
        m = Manifest(paths, data)
        m.save()
        return m

    @property
    def complete(self) -> bool:
        return self.data.get("status") == "complete"

    def save(self) -> None:
        self.data["updated"] = _now()
        write_json(self.data, self.paths.manifest)

    def stage(self, name: str):
        """Context manager that records a stage's status and wall time."""
        return _Stage(self, name)

    def set(self, **fields: Any) -> None:
        self.data.update(fields)
        self.save()


class _Stage:
    def __init__(self, m: Manifest, name: str):
        self.m, self.name = m, name

    def __enter__(self):
        self.t0 = time.perf_counter()
        prev = self.m.data["stages"].get(self.name, {})
        self.m.data["stages"][self.name] = {**prev, "status": "running"}
        self.m.set(status="running", error=None)
        return self

    def __exit__(self, exc_type, exc, tb):
        rec = self.m.data["stages"][self.name]
        rec["seconds"] = round(rec.get("seconds", 0.0) + time.perf_counter() - self.t0, 3)
        rec["status"] = "failed" if exc_type else "complete"
        if exc_type:
            self.m.data["status"] = "failed"
            self.m.data["error"] = f"{self.name}: {exc_type.__name__}: {exc}"
        self.m.save()
        return False
