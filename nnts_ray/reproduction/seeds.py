"""How much of the picture depends on the training run: NNTS cell by cell over runs that differ only in
the training seed, and which claims every seed supports."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from nnts_ray.reproduction.claims import HOLDS, Claim, block_diagonal, decays_with_distance, layer2_gap, nntp_claims
from nnts_ray.reproduction.runs import LayerMatrix, ReproductionError, Run

# Config keys that may differ between seed runs: the training seed, which k they computed, and where and
# how fast they ran (models.<i>.batch_size is the inference batch; the training batch is train.batch_size).
MAY_DIFFER = re.compile(r"^(run_dir|k|metrics\.nntp_k|metrics\.sample_block|knn\.query_block|knn\.shards|paths\..*|ray\..*"
                        r"|models\.\d+\.train\.seed|models\.\d+\.batch_size)$")


@dataclass(frozen=True)
class Spread:
    """Cell-wise statistics of one NNTS matrix over seeds."""

    k: int
    mean: LayerMatrix
    std: LayerMatrix  # sample standard deviation (ddof = 1)
    low: LayerMatrix
    high: LayerMatrix


def common_ks(runs: list[Run]) -> list[int]:
    return sorted(set.intersection(*(set(r.ks) for r in runs)))


def spread(runs: list[Run], k: int) -> Spread:
    mats = [r.nnts_matrix(k) for r in runs]
    names = mats[0].names
    if any(m.names != names for m in mats):
        raise ReproductionError(f"seed runs have different probe points: {[m.names for m in mats]}")
    stack = np.stack([m.values for m in mats])  # (seeds, L, L)
    return Spread(k, LayerMatrix(names, stack.mean(0)), LayerMatrix(names, stack.std(0, ddof=1)),
                  LayerMatrix(names, stack.min(0)), LayerMatrix(names, stack.max(0)))


def flatten_config(d: dict, prefix: str = "") -> dict[str, object]:
    """A nested config as dotted keys (lists of dicts by index: models.0.train.seed)."""
    out: dict[str, object] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(flatten_config(value, f"{prefix}{key}."))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for i, item in enumerate(value):
                out.update(flatten_config(item, f"{prefix}{key}.{i}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_differences(runs: list[Run]) -> dict[str, list]:
    """Config keys whose values differ between the runs, beyond the allowed ones (seed, k, locations)."""
    flats = [flatten_config(r.manifest["config"]) for r in runs]
    keys = sorted(set().union(*flats))
    return {key: [f.get(key) for f in flats] for key in keys
            if not MAY_DIFFER.match(key) and len({repr(f.get(key)) for f in flats}) > 1}


def claims_per_seed(runs: list[Run], ks: list[int], nntp_k: int | None) -> dict[str, list[Claim]]:
    """For each claim that a single k can decide (label 'name (k=…)'), its Claim in every run."""
    table: dict[str, list[Claim]] = {}
    for k in ks:
        for check in (block_diagonal, decays_with_distance, layer2_gap):
            for run in runs:
                claim = check(run.nnts_matrix(k))
                table.setdefault(f"{claim.key} (k={k})", []).append(claim)
    if nntp_k is not None:
        for run in runs:
            for claim in nntp_claims(run.nntp_matrix(nntp_k), run.n):
                table.setdefault(f"{claim.key} (NNTP k={nntp_k})", []).append(claim)
    return table


def survives(claims: list[Claim]) -> bool:
    return all(c.verdict == HOLDS for c in claims)
