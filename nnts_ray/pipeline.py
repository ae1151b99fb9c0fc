"""One analysis run: samples → models → activations → neighbours → metrics → manifest.

Everything that can be checked without writing (configuration, dataset size vs k, probe names) is
checked before the run directory is touched; every stage skips what its markers say is done.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nnts_ray import reuse
from nnts_ray.cluster import Resources, actor_count, connect
from nnts_ray.config import ConfigError, RunConfig
from nnts_ray.data import SampleSet, load_dataset
from nnts_ray.io import atomic_path, read_json, write_npy, write_parquet
from nnts_ray.manifest import Manifest
from nnts_ray.metrics.nnts import Probe
from nnts_ray.models.build import prepare_model
from nnts_ray.naming import RunPaths
from nnts_ray.probes import probe_points
from nnts_ray.progress import log
from nnts_ray.stages.activations import ExtractJob, run_activations
from nnts_ray.stages.metrics import run_metrics
from nnts_ray.stages.neighbours import SearchPlan, search_probe, start_searchers


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    already_complete: bool


def _load_samples(paths: RunPaths, rc: RunConfig) -> SampleSet:
    if paths.samples.is_file() and paths.inputs.is_file():  # a resumed run reads what it wrote
        import pyarrow.parquet as pq

        t = pq.read_table(paths.samples, columns=["sample_id", "label"])
        labels = None if t.column("label").null_count == len(t) else t.column("label").to_numpy().astype(np.int64)
        return SampleSet(t.column("sample_id").to_numpy().astype(np.int64), labels, np.load(paths.inputs, mmap_mode="r"))
    ss = load_dataset(rc.dataset, rc.models[0].input_size)
    if len(ss) <= rc.k_max:
        raise ConfigError(f"k={rc.k_max} is not allowed for n={len(ss)} samples; every k must be < n")
    return ss


def run(rc: RunConfig) -> RunResult:
    paths = RunPaths(rc.run_dir)
    existing = Manifest.existing(paths, rc)
    if existing and existing.get("status") == "complete":
        return RunResult(paths.root, already_complete=True)
    ss = _load_samples(paths, rc)
    data_key = f"{rc.dataset.name}:{len(ss)}:{int(ss.sample_ids.sum())}:{rc.dataset.seed}:{rc.dataset.n_samples}"
    prepared = []
    for mc in rc.models:  # build + validate probe names before anything is written
        model, winfo = prepare_model(mc, np.asarray(ss.images), ss.labels, data_key, rc.paths.cache_dir)
        points = probe_points(model, mc, torch.from_numpy(np.array(ss.images[:2])), rc.seed)
        prepared.append((mc, model, winfo, points))

    manifest = Manifest.open(paths, rc, existing)
    try:
        return _run_stages(rc, paths, manifest, ss, prepared)
    except BaseException as e:
        manifest.set(status="failed", error=f"{type(e).__name__}: {e}")
        raise


def _run_stages(rc, paths: RunPaths, manifest: Manifest, ss: SampleSet, prepared) -> RunResult:
    n = len(ss)
    manifest.set(n_samples=n, dataset={"name": rc.dataset.name, "n": n})
    with manifest.stage("samples"):
        if not paths.samples.is_file():
            write_npy(np.ascontiguousarray(ss.images, dtype=np.float32), paths.inputs)
            write_parquet(ss.table(), paths.samples)
    log(f"samples: {n} from {rc.dataset.name} -> {paths.samples}")

    models_info = {}
    with manifest.stage("models"):
        for mc, model, winfo, points in prepared:
            weights = paths.model_weights(mc.name)
            if not weights.is_file():
                with atomic_path(weights) as tmp:
                    torch.save(model.state_dict(), tmp)
            models_info[mc.name] = {
                "arch": mc.arch, "weights": winfo, "probe_mode": mc.probe_mode, "reduction": mc.reduction,
                "probe_points": [{"layer": p.layer, "position": p.position, "shape": list(p.shape), "dim": p.dim,
                                  "reduction": mc.reduction} for p in points],
            }
            log(f"model {mc.name}: {len(points)} probe points ({winfo['weights']}"
                + (f", train accuracy {winfo['train_accuracy']:.3f}" if "train_accuracy" in winfo else "") + ")")
    manifest.set(models=models_info)

    res: Resources = connect(rc.ray)
    actors = actor_count(rc.ray, res)
    manifest.set(cluster={"cpus": res.cpus, "gpus": res.gpus, "device": res.device, "actors": actors})
    log(f"ray: {res.cpus} CPUs, {res.gpus} GPUs -> {actors} actors on {res.device}")

    data_digest = reuse.data_digest(rc.dataset, ss.sample_ids, paths.inputs)
    with manifest.stage("activations"):
        for mc, model, winfo, points in prepared:
            layers = [p.layer for p in points]
            key = reuse.activation_key(data_digest, mc, model, rc.seed)
            if source := reuse.link_earlier(paths, rc.paths.runs_root, mc.name, key, layers, n):
                manifest.data["models"][mc.name]["activations_reused_from"] = source
            job = ExtractJob(
                model=mc, weights=str(paths.model_weights(mc.name)), in_channels=mc.in_channels or ss.images.shape[1],
                num_classes=int(ss.labels.max()) + 1 if ss.labels is not None else 10, inputs=str(paths.inputs),
                layers=tuple(layers),
                outputs=tuple(str(paths.activations(mc.name, l).with_name("features.partial.npy")) for l in layers),
                seed=rc.seed, device=res.device,
            )
            run_activations(paths, mc.name, job, n, [p.dim for p in points], actors, res.gpus)  # no-op when linked
            reuse.record(paths, mc.name, key, layers, n)

    probes = [Probe(mc.name, p.layer, p.position) for mc, _, _, points in prepared for p in points]
    approx = rc.knn.index != "exact"
    plan = SearchPlan(k=rc.k_max, metric=rc.knn.metric, query_block=rc.knn.query_block,
                      refine_ranks=rc.knn.refine_ranks, factory=rc.knn.index if approx else None,
                      search_params=rc.knn.search_params, recall_sample=rc.knn.recall_sample,
                      shards=rc.knn.shards)
    with manifest.stage("neighbours"):
        import ray

        searchers = start_searchers(max(actors, rc.knn.shards or 1), res.gpus)
        for i, p in enumerate(probes):
            search_probe(paths, p.model, p.layer, ss.sample_ids, plan, searchers)
            log(f"neighbours {p.model}/{p.layer} ({i + 1}/{len(probes)}): k={plan.k}")
        manifest.data["cluster"]["search_actors"] = ray.get([s.where.remote() for s in searchers])
        for s in searchers:
            ray.kill(s)
        if approx:
            conv = manifest.data["conventions"]
            conv["index"]["recall"] = {f"{p.model}/{p.layer}": read_json(paths.marker("neighbours", p.model, p.layer))["recall"]
                                       for p in probes}
            conv["index"]["recall_sample"] = rc.knn.recall_sample

    layer_rows = [
        {"model": mc.name, "layer": p.layer, "position": p.position, "dim": p.dim,
         "shape": "x".join(map(str, p.shape)), "reduction": mc.reduction}
        for mc, _, _, points in prepared for p in points
    ]
    with manifest.stage("metrics"):
        run_metrics(paths, rc, ss.sample_ids, ss.labels, probes, layer_rows)
    log(f"metrics -> {paths.metrics_dir}")

    if not rc.keep_activations:  # only once every table that needs them is written
        shutil.rmtree(paths.root / "activations", ignore_errors=True)
        shutil.rmtree(paths.root / "_work", ignore_errors=True)
    manifest.set(status="complete", error=None)
    return RunResult(paths.root, already_complete=False)
