"""Stage 3: model inputs → per-probe-point feature matrices, on a pool of Ray actors.

Each actor loads the model once (on its first batch) and, per batch of rows [lo, hi), runs the
forward pass under `torch.inference_mode()` and writes every probe point's reduced output straight
into that probe point's preallocated `.npy` (rows are disjoint, so actors never contend and a retried
batch rewrites the same values: nothing lost or duplicated). An actor killed mid-batch is restarted
and the batch retried. The driver renames the files into place once every row is there.

Plain actors rather than a Ray Data actor pool: Ray Data puts its map function in the object store,
which with actor restarts enabled makes Ray log an error-level line on every run (ray#53727), and its
pool may construct a surplus actor after the last batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from nnts_ray.config import ConfigError, ModelConfig
from nnts_ray.io import check_marker, mark_files, read_json, record_digest, say_redone
from nnts_ray.naming import RunPaths
from nnts_ray.plan import ModelPlan, RunPlan
from nnts_ray.progress import Progress, log
from nnts_ray.stages import reuse
from nnts_ray.stages.samples import ensure_inputs


@dataclass(frozen=True)
class ExtractJob:
    """Everything an actor needs, as plain values (no DictConfig, no open files)."""

    model: ModelConfig
    weights: str
    in_channels: int
    num_classes: int
    inputs: str
    layers: tuple[str, ...]
    outputs: tuple[str, ...]  # temporary .npy per layer, preallocated by the driver
    seed: int
    device: str


class ActivationWriter:
    """Ray actor: one model per actor; `extract(lo, hi)` writes rows [lo, hi) of every probe point."""

    def __init__(self, job: ExtractJob):
        self.job = job
        self.extractor = None

    def _open(self) -> None:
        import torch

        from nnts_ray.models.build import build_model
        from nnts_ray.probes import Extractor, Reducer

        job = self.job
        model = build_model(job.model, job.in_channels, job.num_classes)
        model.load_state_dict(torch.load(job.weights, map_location="cpu", weights_only=True))
        self.device = job.device if (job.device == "cpu" or torch.cuda.is_available()) else "cpu"
        self.extractor = Extractor(model.to(self.device).eval(), list(job.layers), job.model.probe_mode)
        self.inputs = np.load(job.inputs, mmap_mode="r")
        self.outputs = [np.load(p, mmap_mode="r+") for p in job.outputs]
        with torch.inference_mode():
            x = torch.from_numpy(np.array(self.inputs[:1])).to(self.device)
            shapes = {n: tuple(t.shape[1:]) for n, t in self.extractor(x).items()}
        self.reducers = [Reducer(job.model, n, shapes[n], job.seed) for n in job.layers]

    def extract(self, lo: int, hi: int) -> np.ndarray:
        """Rows [lo, hi) of every probe point; returns (hi - lo, layers) counts of non-finite values."""
        import torch

        if self.extractor is None:
            self._open()
        with torch.inference_mode():
            x = torch.from_numpy(np.array(self.inputs[lo:hi], dtype=np.float32)).to(self.device)
            outs = self.extractor(x)
            bad = np.zeros((hi - lo, len(self.job.layers)), dtype=np.int64)
            for j, (name, reduce, out) in enumerate(zip(self.job.layers, self.reducers, self.outputs)):
                feats = reduce(outs[name]).cpu().numpy()  # (b, d) float32
                bad[:, j] = (~np.isfinite(feats)).sum(axis=1)
                out[lo:hi] = feats
        for out in self.outputs:
            out.flush()
        return bad


def files(paths: RunPaths, mp: ModelPlan) -> dict[str, object]:
    return {p.layer: paths.activations(mp.name, p.layer) for p in mp.probes}


def run(plan: RunPlan, paths: RunPaths) -> dict:
    """Extract (or link from an earlier run) every model's probe points; verified work is skipped."""
    from nnts_ray.cluster import session

    facts: dict = {"models": {}}
    for mp in plan.models:
        inputs = record_digest(paths.marker("samples"), paths.marker("models", mp.name))
        record, problems = check_marker(paths.marker("activations", mp.name), files(paths, mp), inputs)
        if record is not None or _released(paths, mp, inputs):
            continue
        say_redone(f"activations {mp.name}", problems)
        key = reuse.activation_key(plan, mp, read_json(paths.marker("models", mp.name))["state_digest"])
        source = reuse.link_earlier(plan, paths, mp, key, inputs)
        if source is not None:
            facts["models"][mp.name] = {"activations_reused_from": source}
        else:
            cluster = session(plan.config.ray)
            facts["cluster"] = cluster.facts()
            _extract(plan, paths, mp, cluster.actors, cluster.resources.gpus, cluster.resources.device, inputs)
        reuse.record(paths, mp, key, plan.data.n)
    return facts


def _extract(plan: RunPlan, paths: RunPaths, mp: ModelPlan, actors: int, gpus: int, device: str, inputs: str) -> None:
    from nnts_ray.cluster import run_tasks, start_actors, stop_actors

    n = plan.data.n
    job = ExtractJob(
        model=mp.config, weights=str(paths.model_weights(mp.name)), in_channels=mp.in_channels,
        num_classes=mp.num_classes, inputs=str(ensure_inputs(plan, paths)),
        layers=tuple(p.layer for p in mp.probes),
        outputs=tuple(str(paths.activations(mp.name, p.layer).with_name("features.partial.npy")) for p in mp.probes),
        seed=plan.config.seed, device=device,
    )
    for out, p in zip(job.outputs, mp.probes):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=(n, p.dim)).flush()
    step = mp.config.batch_size
    batches = [(lo, min(lo + step, n)) for lo in range(0, n, step)]
    bad = np.zeros((n, len(job.layers)), dtype=np.int64)
    pool = start_actors(ActivationWriter, max(1, min(actors, len(batches))), gpus, job)
    try:
        with Progress(f"activations {mp.name}", n, "samples") as progress:
            def done(batch: tuple[int, int], counts: np.ndarray) -> None:
                bad[batch[0] : batch[1]] = counts
                progress.advance(batch[1] - batch[0])

            run_tasks(pool, batches, lambda actor, b: actor.extract.remote(*b), done)
    finally:
        stop_actors(pool)
    for name, count, samples in zip(job.layers, bad.sum(axis=0), (bad > 0).sum(axis=0)):
        if count:
            for out in job.outputs:  # this stage's own files: nothing half-made is left behind
                os.unlink(out)
            raise ConfigError(
                f"probe point {name!r} of model {mp.name!r} has {int(count)} non-finite values in "
                f"{int(samples)} samples; neighbour search needs finite features"
            )
    out_files = files(paths, mp)
    for name, tmp in zip(job.layers, job.outputs):
        os.replace(tmp, out_files[name])
    mark_files(paths.marker("activations", mp.name), out_files, {"n": n}, inputs)
    log(f"activations {mp.name}: {len(job.layers)} probe points × {n} samples")


def _released(paths: RunPaths, mp: ModelPlan, inputs: str) -> bool:
    """The run finished with keep_activations=false and removed these files on purpose."""
    marker = paths.marker("activations", mp.name)
    try:
        record = read_json(marker)
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("released") is True and record.get("inputs") == inputs


def release(plan: RunPlan, paths: RunPaths) -> None:
    """keep_activations=false: remove the feature files once every table that needs them is written,
    keeping their records (marked released), so a re-run knows they are gone on purpose."""
    import shutil

    from nnts_ray.io import write_json

    for mp in plan.models:
        marker = paths.marker("activations", mp.name)
        if marker.is_file():
            write_json({**read_json(marker), "released": True}, marker)
    shutil.rmtree(paths.root / "activations", ignore_errors=True)


def require(paths: RunPaths, probes, why: str) -> None:
    """Refuse to go on when features a stage must read were released (keep_activations=false)."""
    missing = [f"{p.model}/{p.layer}" for p in probes if not paths.activations(p.model, p.layer).is_file()]
    if missing:
        raise ConfigError(f"{why} needs the activations of {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}, "
                          "which this run did not keep (keep_activations=false); start it in a new run_dir")
