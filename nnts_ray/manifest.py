"""manifest.json: what a run is (config, conventions, versions, probe points) and how far it got.

A run directory belongs to one configuration (its fingerprint) and one data content (its digest).
Starting a different configuration — or the same one on changed data when the run is finished — in a
directory that holds a run is refused before anything is written; otherwise the run resumes (each
stage verifies what it finds and redoes only what is missing or damaged)."""

from __future__ import annotations

import platform
import time
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

from nnts_ray.config import ConfigError
from nnts_ray.io import read_json, write_json
from nnts_ray.naming import RunPaths
from nnts_ray.plan import RunPlan

FORMAT = "nnts_ray/2"  # the run-directory contract version (docs/RUN_DIRECTORY.md)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("nnts-ray", "torch", "torchvision", "ray", "faiss-cpu", "faiss-gpu", "polars", "pyarrow", "numpy",
                "hydra-core"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def conventions(plan: RunPlan) -> dict[str, Any]:
    rc, s = plan.config, plan.search
    return {
        "metric": s.metric,
        "k": list(plan.ks.nnts),
        "search_k": plan.ks.search,
        "stored_ranks": s.k,
        "set_only_k": list(s.set_ks),
        "smaller_k": "prefixes of one search at the largest k",
        "set_only": "k whose neighbour sets are intersected during the search (intersections/k=<k>/), not stored "
                    "as ranks: the same sets a ranked search gives (tie rule included)",
        "self_exclusion": "by index (a sample is never its own neighbour; duplicates are kept)",
        "tie_rule": "(distance, neighbour sample_id) ascending",
        "dtype": "float32 features; GEMM distances in float32 (TF32/bf16 off)",
        "distance": "euclidean (not squared)" if s.metric == "l2" else "1 - cosine similarity",
        "refine_ranks": f"ranks < {s.refine_ranks} re-scored by direct differences" if s.refine_ranks else "none",
        "index": {"type": "approximate" if s.factory else "exact", "factory": s.factory,
                  "recall": None if s.factory else 1.0},
        "nntp": {"connected": "union symmetrisation (i→j or j→i)", "k": list(plan.ks.nntp),
                 "alpha": list(plan.ks.alpha)},
        "per_sample": rc.metrics.per_sample,
        "jaccard": "mean over samples of |K_a ∩ K_b| / |K_a ∪ K_b|",
        "overlap": "mean over samples of |K_a ∩ K_b| / k",
        "chance": "jaccard k/(2(n-1)-k), overlap k/(n-1)",
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _merge(into: dict, facts: dict) -> None:
    """Deep merge: nested dicts are merged, everything else replaced."""
    for key, value in facts.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


class Manifest:
    def __init__(self, paths: RunPaths, data: dict[str, Any]):
        self.paths, self.data = paths, data

    @staticmethod
    def existing(paths: RunPaths, plan: RunPlan) -> dict | None:
        """The run's manifest when it is this plan's, None for a new directory; anything else is
        refused before a byte is written."""
        where = f"run_dir={str(paths.root)!r}"
        if paths.manifest.is_file():
            try:
                data = read_json(paths.manifest)
            except (OSError, ValueError) as e:
                raise ConfigError(f"{where} holds a manifest.json that cannot be read ({e}); choose another run_dir "
                                  "(nothing was changed)") from None
            if not isinstance(data, dict):
                raise ConfigError(f"{where} holds a manifest.json that is not a JSON object; choose another run_dir "
                                  "(nothing was changed)")
            if data.get("fingerprint") != plan.fingerprint:
                raise ConfigError(f"{where} holds a {data.get('status', 'unknown')} run of a different configuration; "
                                  "choose another run_dir (nothing was changed)")
            recorded = (data.get("dataset") or {}).get("digest") if isinstance(data.get("dataset"), dict) else None
            if data.get("status") == "complete" and recorded not in (None, plan.data.digest):
                raise ConfigError(f"{where} holds a finished run of other data (the dataset's content changed since); "
                                  "choose another run_dir (nothing was changed)")
            return data
        if paths.root.exists() and any(paths.root.iterdir()):
            raise ConfigError(f"{where} is not empty and holds no nnts_ray run; choose another run_dir")
        return None

    @staticmethod
    def open(paths: RunPaths, plan: RunPlan) -> "Manifest":
        """Continue this plan's manifest in `paths` or start a new one (see `Manifest.existing`)."""
        existing = Manifest.existing(paths, plan)
        if existing is not None:
            return Manifest(paths, existing)
        data = {
            "format": FORMAT, "status": "running", "fingerprint": plan.fingerprint, "created": _now(),
            "updated": _now(), "error": None, "config": plan.config.to_dict(), "n_samples": plan.data.n,
            "conventions": conventions(plan), "versions": versions(),
            "models": {mp.name: {"arch": mp.config.arch, "probe_mode": mp.config.probe_mode,
                                 "reduction": mp.config.reduction, "in_channels": mp.in_channels,
                                 "num_classes": mp.num_classes,
                                 "probe_points": [{"layer": p.layer, "position": p.position, "shape": list(p.shape),
                                                   "dim": p.dim, "reduction": p.reduction} for p in mp.probes]}
                       for mp in plan.models},
            "stages": {},
        }
        m = Manifest(paths, data)
        m.save()
        return m

    @property
    def status(self) -> str | None:
        return self.data.get("status")

    def save(self) -> None:
        self.data["updated"] = _now()
        write_json(self.data, self.paths.manifest)

    def record(self, facts: dict) -> None:
        """Merge what a stage reports into the manifest."""
        if facts:
            _merge(self.data, facts)
            self.save()

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
