"""Small but real run directories (SPEC §4 + nnts_ray.schemas) for the dashboard tests.

Features are seeded clusters; neighbours come from an exact numpy search (self excluded by index, ties
by (distance, id)); NNTS, NNTP, CKA and the per-layer statistics are computed from them with the
formulas of the SPEC, so the dashboard is tested on values that agree with each other.
"""

from __future__ import annotations

import io
import json
from itertools import product
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

from nnts_ray import schemas
from nnts_ray.io import write_json, write_parquet
from nnts_ray.naming import RunPaths

N_SAMPLES = 60
KS = (5, 10)
LAYERS = ("input", "conv", "relu", "logits")
DIMS = (16, 12, 8, 3)


def features(seed: int, labels: np.ndarray) -> list[np.ndarray]:
    """(n, d) float32 per probe point: each a noisy projection of the one before, so neighbourhoods
    partly persist along the chain, with class structure that sharpens towards the output."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(labels.max() + 1, DIMS[0]))[labels] + rng.normal(size=(len(labels), DIMS[0]))
    out = []
    for depth, dim in enumerate(DIMS):
        if depth:
            x = x @ rng.normal(size=(x.shape[1], dim)) / np.sqrt(x.shape[1]) + 0.3 * rng.normal(size=(len(labels), dim))
            x += depth * rng.normal(size=(labels.max() + 1, dim))[labels]
        out.append(x.astype(np.float32))
    return out


def knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours: (n, k) ids and float32 distances, self excluded by index."""
    d = np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1))  # (n, n)
    np.fill_diagonal(d, np.inf)
    ids = np.arange(len(x))
    order = np.array([np.lexsort((ids, row))[:k] for row in d])  # ties by (distance, id)
    return order, np.take_along_axis(d, order, 1).astype(np.float32)


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, size=(8, 8), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def nntp_runs(graphs: list[set[tuple[int, int]]]) -> dict[tuple[int, int], int]:
    """α = 0: maximal stretches of consecutive probe points at which a pair is connected."""
    counts: dict[tuple[int, int], int] = {}
    for pair in set().union(*graphs):
        start = None
        for v, graph in enumerate([*graphs, set()]):
            if pair in graph and start is None:
                start = v
            elif pair not in graph and start is not None:
                counts[(start, v - 1)] = counts.get((start, v - 1), 0) + 1
                start = None
    return counts


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(0), y - y.mean(0)
    return float(np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


# How each model's weights are recorded: the core's current form ({"source", "train_accuracy"}) and the
# form of runs written before it ({"weights": <source>}), which the dashboard still reads.
WEIGHTS = {"new": {"source": "trained", "train_accuracy": 0.875, "epochs": 8}, "old": {"weights": "checkpoint", "checkpoint": "ckpt/e8.pt"}}


def manifest(models: list[str], status: str, stages: dict[str, str], updated: str, weights: str = "new", stored_ranks: int | None = None) -> dict:
    conventions = {"metric": "l2", "k": list(KS), "self_exclusion": "index", "tie_rule": "(distance, sample_id)", "dtype": "float32"}
    return {
        "format": "nnts_ray/1", "status": status, "fingerprint": f"fp-{'-'.join(models)}", "error": None,
        "created": "2026-11-01T10:00:00+00:00", "updated": updated,
        "config": {"dataset": {"name": "digits", "n_samples": N_SAMPLES}, "k": list(KS), "models": [{"name": m} for m in models]},
        "n_samples": N_SAMPLES,
        "conventions": conventions if stored_ranks is None else conventions | {"stored_ranks": stored_ranks},
        "models": {m: {"arch": "lenet5", "weights": WEIGHTS[weights], "probe_points": [
            {"layer": layer, "position": p, "dim": d, "shape": str(d), "reduction": "flatten"}
            for p, (layer, d) in reversed(list(enumerate(zip(LAYERS, DIMS))))  # stored out of order on purpose
        ]} for m in models},
        "versions": {"python": "3.11", "polars": pl.__version__},
        "stages": {s: {"status": st, "seconds": 1.5 if st == "complete" else None} for s, st in stages.items()},
    }


def _nnts_rows(keys: list[tuple[str, str]], nbrs: dict, ids: np.ndarray) -> tuple[list[dict], list[dict]]:
    """NNTS for every ordered pair with the diagonal (as the core writes it); per-sample values for pairs
    a < b in probe order only (as the core writes them)."""
    table, per_sample, n = [], [], len(ids)
    for ((a, (ma, la)), (b, (mb, lb))), k in product(product(enumerate(keys), enumerate(keys)), KS):
        m = np.array([len(set(nbrs[ma, la][0][i, :k]) & set(nbrs[mb, lb][0][i, :k])) for i in range(n)])
        jac = m / (2 * k - m)
        table.append({"model_a": ma, "layer_a": la, "model_b": mb, "layer_b": lb, "k": k, "jaccard": jac.mean(),
                      "overlap": (m / k).mean(), "chance_jaccard": k / (2 * (n - 1) - k), "chance_overlap": k / (n - 1), "n_samples": n})
        if a < b:
            per_sample += [{"sample_id": int(ids[i]), "model_a": ma, "layer_a": la, "model_b": mb, "layer_b": lb, "k": k,
                            "intersection": int(m[i]), "jaccard": float(jac[i])} for i in range(n)]
    return table, per_sample


def _model_tables(model: str, nbrs: dict, labels: np.ndarray, ids: np.ndarray, explained: dict) -> tuple[list[dict], list[dict], list[dict]]:
    """NNTP rows (only non-zero cells, as a writer may), persistent partners per sample and layer
    statistics (the analysis stage's names)."""
    nntp, partners, layers = [], [], []
    for k in KS:
        graphs = [{(min(i, j), max(i, j)) for i in range(len(labels)) for j in nbrs[model, layer][0][i, :k]} for layer in LAYERS]
        nntp += [{"model": model, "layer_first": LAYERS[a], "layer_last": LAYERS[b], "k": k, "alpha": 0, "n_pairs": c}
                 for (a, b), c in nntp_runs(graphs).items()]
        everywhere = set.intersection(*graphs)
        partners += [{"model": model, "k": k, "sample_id": int(ids[i]), "persistent_partners": sum(i in pair for pair in everywhere)} for i in range(len(labels))]
    for p, layer in enumerate(LAYERS):
        ids, dist = nbrs[model, layer]
        layers.append({"model": model, "layer": layer, "position": p, "dim": DIMS[p], "shape": str(DIMS[p]), "reduction": "flatten",
                       "n_edges_k": None, "twonn_id": float(len(labels) / np.log(dist[:, 1] / dist[:, 0]).sum()),
                       "twonn_n_used": len(labels), "twonn_discard": 0.0, "label_agreement_chance": 1 / 3, "pca_explained": explained[model, layer],
                       **{f"label_agreement_k{k}": float((labels[ids[:, :k]] == labels[:, None]).mean()) for k in KS}})
    return nntp, partners, layers


def _write_neighbours(paths: RunPaths, model: str, layer: str, x: np.ndarray, ids: np.ndarray, stored: int = max(KS)) -> tuple[np.ndarray, np.ndarray]:
    """The exact neighbours (as row positions) of `max(KS)` ranks; the table on disk holds `stored` ranks, as sample ids."""
    rows, dist = knn(x, max(KS))
    frame = pl.DataFrame({"sample_id": np.repeat(ids, stored), "rank": np.tile(np.arange(stored), len(x)),
                          "neighbour_id": ids[rows[:, :stored]].ravel(), "distance": dist[:, :stored].ravel()})
    write_parquet(frame.to_arrow(), paths.neighbours_part(model, layer, 0), schemas.NEIGHBOURS)
    return rows, dist


def pca(x: np.ndarray) -> tuple[np.ndarray, float]:
    """(n, 2) first two principal components of x (centred) and the share of the variance they hold."""
    centred = x - x.mean(0)
    _, s, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    return centred @ vt[:2].T, float((s[:2] ** 2).sum() / (s**2).sum())


def _extras(paths: RunPaths, extras: tuple[str, ...], keys: list[tuple[str, str]], feats: dict, nnts: pl.DataFrame, per_sample: pl.DataFrame, ids: np.ndarray) -> None:
    """Optional tables in the form the analysis stage writes them (pairs a <= b in probe order)."""
    labels = pl.DataFrame({"sample_id": ids, "label": np.arange(N_SAMPLES) % 3})
    pair = ["model_a", "layer_a", "model_b", "layer_b", "k"]
    if "cka" in extras:
        rows = [{"model_a": ma, "layer_a": la, "model_b": mb, "layer_b": lb, "cka": linear_cka(feats[ma, la], feats[mb, lb]),
                 "dim_a": feats[ma, la].shape[1], "dim_b": feats[mb, lb].shape[1], "projected": False}
                for a, (ma, la) in enumerate(keys) for (mb, lb) in keys[a:]]
        write_parquet(pl.DataFrame(rows).to_arrow(), paths.metric("cka"))
    if "nnts_null" in extras:
        null = (per_sample.group_by(pair, maintain_order=True).agg(pl.col("jaccard").mean()).join(nnts.select(*pair, "chance_jaccard"), on=pair)
                .select(*pair, "jaccard", null_mean="chance_jaccard", null_std=pl.lit(0.01), z=(pl.col("jaccard") - pl.col("chance_jaccard")) / 0.01,
                        # p: 0.5 for every pair with the logits (not above the null), else tiny, like a p-value printed as 0.000…
                        p_value=pl.when((pl.col("layer_a") == LAYERS[-1]) | (pl.col("layer_b") == LAYERS[-1])).then(0.5).otherwise(3.2e-25),
                        permutations=pl.lit(100)))
        write_parquet(null.to_arrow(), paths.metric("nnts_null"))
    if "per_class" in extras:
        per_class = per_sample.join(labels, on="sample_id", validate="m:1").group_by(*pair, "label").agg(jaccard_mean=pl.col("jaccard").mean(), n=pl.len())
        write_parquet(per_class.to_arrow(), paths.metric("per_class"))
    if "embedding" in extras:
        maps = [pl.DataFrame({"model": m, "layer": layer, "sample_id": ids, "x": xy[:, 0], "y": xy[:, 1]})
                for (m, layer) in keys for xy in [pca(feats[m, layer])[0]]]
        write_parquet(pl.concat(maps).to_arrow(), paths.metric("embedding"), schemas.EMBEDDING)
    if "most_changed" in extras:
        steps = pl.DataFrame({"layer_a": LAYERS[:-1], "layer_b": LAYERS[1:]})
        changed = (per_sample.filter(pl.col("model_a") == pl.col("model_b")).join(steps, on=["layer_a", "layer_b"])
                   .sort("jaccard", "sample_id").with_columns(model=pl.col("model_a"), rank=pl.int_range(pl.len()).over(pair)).filter(pl.col("rank") < 20))
        write_parquet(changed.select("model", "layer_a", "layer_b", "k", "rank", "sample_id", "jaccard").to_arrow(), paths.metric("most_changed"))


def write_run(run_dir: Path, models: list[str], *, thumbnails: bool = True, extras: tuple[str, ...] = (), updated: str = "2026-11-02T10:00:00+00:00",
              ids: np.ndarray | None = None, stored_ranks: int | None = None, weights: str = "new") -> RunPaths:
    """A complete run; `extras` picks optional tables: cka, nnts_null, per_class, most_changed, nntp_partners,
    embedding. `ids`: the sample ids (default 0..n-1; a subsampled run has gaps); `stored_ranks`: ranks kept
    per sample in the neighbour tables (recorded in the manifest; default all, unrecorded)."""
    paths = RunPaths(run_dir)
    ids = np.arange(N_SAMPLES) if ids is None else np.asarray(ids, dtype=np.int64)
    labels = np.arange(N_SAMPLES) % 3
    samples = {"sample_id": ids, "label": labels}
    if thumbnails:
        samples["thumbnail"] = [None if i == 1 else png(i) for i in range(N_SAMPLES)]  # one image missing
    write_parquet(pl.DataFrame(samples).to_arrow(), paths.samples)
    keys = [(m, layer) for m in models for layer in LAYERS]  # probe order of the run
    feats = {(m, layer): x for seed, m in enumerate(models) for layer, x in zip(LAYERS, features(seed, labels))}
    nbrs = {key: _write_neighbours(paths, *key, feats[key], ids, stored_ranks or max(KS)) for key in keys}
    nnts, per_sample = (pl.DataFrame(rows) for rows in _nnts_rows(keys, nbrs, ids))
    write_parquet(nnts.to_arrow(), paths.metric("nnts"), schemas.NNTS)
    write_parquet(per_sample.to_arrow(), paths.metric("per_sample"), schemas.PER_SAMPLE)
    explained = {key: pca(feats[key])[1] for key in keys}
    nntp, partners, layers = (sum(parts, []) for parts in zip(*(_model_tables(m, nbrs, labels, ids, explained) for m in models)))
    write_parquet(pl.DataFrame(nntp).to_arrow(), paths.metric("nntp"), schemas.NNTP)
    if "nntp_partners" in extras:
        write_parquet(pl.DataFrame(partners).to_arrow(), paths.metric("nntp_partners"))
    write_parquet(pl.DataFrame(layers, schema_overrides={"n_edges_k": pl.Int64}).to_arrow(), paths.metric("layers"))
    _extras(paths, extras, keys, feats, nnts, per_sample, ids)
    stages = {s: "complete" for s in ("samples", "activations", "neighbours", "metrics")}
    write_json(manifest(models, "complete", stages, updated, weights, stored_ranks), paths.manifest)
    return paths


def write_in_progress(run_dir: Path) -> RunPaths:
    """A run whose neighbour search is half done: two probe points searched, no metrics yet."""
    paths = RunPaths(run_dir)
    labels = np.arange(N_SAMPLES) % 3
    write_parquet(pl.DataFrame({"sample_id": np.arange(N_SAMPLES), "label": labels}).to_arrow(), paths.samples)
    for layer, x in list(zip(LAYERS, features(7, labels)))[:2]:
        _write_neighbours(paths, "lenet", layer, x, np.arange(N_SAMPLES))
    stages = {"samples": "complete", "activations": "complete", "neighbours": "running"}
    write_json(manifest(["lenet"], "running", stages, "2026-11-06T10:00:00+00:00"), paths.manifest)  # the newest run, not complete
    return paths


def corrupt(paths: RunPaths) -> None:
    """Damage a complete run: garbage NNTS, a truncated NNTP, a garbage neighbour part."""
    paths.metric("nnts").write_bytes(b"PAR1 this is not parquet")
    nntp = paths.metric("nntp").read_bytes()
    paths.metric("nntp").write_bytes(nntp[: len(nntp) // 2])
    next(paths.neighbours_root.rglob("*.parquet")).write_bytes(b"garbage")


# The runs of the test runs directory: {role: run directory relative to the root}.
RUNS = {"sweep": "sweep-digits", "single": "lenet-digits", "subsampled": "lenet-digits-subsample", "running": "nested/in-progress",
        "corrupt": "corrupt", "unreadable": "broken-manifest", "oops": "config-oops"}
SUBSAMPLE_IDS = 3 + 7 * np.arange(N_SAMPLES)  # a seeded subsample keeps the ids of the full set: gaps everywhere
SUBSAMPLE_STORED = KS[0]  # the subsampled run stores fewer neighbour ranks than its largest k


def write_runs_root(root: Path, runs: dict[str, str] = RUNS) -> None:
    """The runs directory the page tests use, plus a folder that is not a run."""
    write_run(root / runs["sweep"], ["lenet_a", "lenet_b"], extras=("cka", "nnts_null", "per_class", "embedding"), updated="2026-11-05T10:00:00+00:00",
              weights="old")
    write_run(root / runs["single"], ["lenet"], thumbnails=False, extras=("most_changed", "nntp_partners"), updated="2026-11-04T10:00:00+00:00")
    write_run(root / runs["subsampled"], ["lenet"], extras=("per_class", "embedding"), updated="2026-11-03T12:00:00+00:00",
              ids=SUBSAMPLE_IDS, stored_ranks=SUBSAMPLE_STORED)
    write_in_progress(root / runs["running"])
    corrupt(write_run(root / runs["corrupt"], ["lenet"], updated="2026-11-01T10:00:00+00:00"))
    (root / runs["unreadable"]).mkdir()
    (root / runs["unreadable"] / "manifest.json").write_text("{not json")
    (root / runs["oops"]).mkdir()
    (root / runs["oops"] / "manifest.json").write_text(json.dumps({**manifest(["lenet"], "complete", {}, "2026-11-07T10:00:00+00:00"), "config": "oops"}))
    (root / "notes").mkdir()
    (root / "notes" / "README.txt").write_text(json.dumps({"not": "a run"}))
    return runs
