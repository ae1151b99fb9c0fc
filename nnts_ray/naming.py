"""Every file-name rule of a run directory lives here (RUN_DIRECTORY.md). Nothing else builds these paths."""

from __future__ import annotations

import re
from pathlib import Path

_SAFE = re.compile(r"^[A-Za-z0-9_.\-]+$")


def check_name(kind: str, name: str) -> str:
    """Model and layer names become hive partition values: refuse what would break a path."""
    if not _SAFE.match(name) or name in (".", ".."):
        raise ValueError(f"{kind} name {name!r} is not usable in a path; allowed: letters, digits, '_', '-', '.'")
    return name


class RunPaths:
    """Paths inside one run directory."""

    def __init__(self, run_dir: str | Path):
        self.root = Path(run_dir)

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def samples(self) -> Path:
        return self.root / "samples.parquet"

    @property
    def neighbours_root(self) -> Path:
        return self.root / "neighbours"

    def neighbours_dir(self, model: str, layer: str) -> Path:
        return self.neighbours_root / f"model={check_name('model', model)}" / f"layer={check_name('layer', layer)}"

    def neighbours_part(self, model: str, layer: str, part: int) -> Path:
        return self.neighbours_dir(model, layer) / f"part-{part:05d}.parquet"

    @property
    def intersections_root(self) -> Path:
        return self.root / "intersections"

    def intersections_part(self, k: int, part: int) -> Path:
        """Per-sample |K_a ∩ K_b| of every pair of probe points at a set-only k, for one query block."""
        return self.intersections_root / f"k={int(k)}" / f"part-{part:05d}.parquet"

    def neighbour_sets(self, model: str, layer: str, k: int, part: int) -> Path:
        """Work file: membership bits (q, words) uint64 of one query block's k nearest, at a set-only k."""
        return (self.work / "sets" / f"model={check_name('model', model)}" / f"layer={check_name('layer', layer)}"
                / f"k={int(k)}" / f"part-{part:05d}.npy")

    @property
    def metrics_dir(self) -> Path:
        return self.root / "metrics"

    def metric(self, name: str) -> Path:
        """metrics/<name>.parquet, e.g. nnts, nntp, per_sample, layers."""
        return self.metrics_dir / f"{name}.parquet"

    def activations(self, model: str, layer: str) -> Path:
        """(n, d) float32 rows in samples.parquet order (sample_id ascending)."""
        return self.root / "activations" / f"model={check_name('model', model)}" / f"layer={check_name('layer', layer)}" / "features.npy"

    @property
    def work(self) -> Path:
        """Intermediate files of an unfinished run; removed when the run completes."""
        return self.root / "_work"

    def inputs(self, data_digest: str) -> Path:
        """The dataset's model inputs, (n, C, H, W) float32, in sample order: read by the actors.
        Named by the content they came from, so a run resumed after its data changed never reads
        inputs of the old data."""
        return self.work / f"inputs-{data_digest[:16]}.npy"

    def model_weights(self, model: str) -> Path:
        return self.root / "models" / f"{check_name('model', model)}.pt"

    # Completion markers live outside the hive-partitioned trees (those hold only Parquet files).
    def marker(self, stage: str, *parts: str) -> Path:
        return self.root / "_state" / stage / ("__".join(parts) + ".done" if parts else "all.done")
