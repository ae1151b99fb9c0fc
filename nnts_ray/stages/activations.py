"""Stage 3: model inputs → per-probe-point feature matrices, with a Ray Data actor pool.

Each actor loads the model once (`__init__`) and, per batch of row indices, runs the forward pass
under `torch.inference_mode()` and writes every probe point's reduced output straight into that
probe point's preallocated `.npy` (rows are disjoint, so actors never contend and a retried batch
rewrites the same values: nothing lost or duplicated). Batches carry their row indices because Ray
returns them in no guaranteed order. The driver renames the files into place once every row is there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from nnts_ray.config import ConfigError, ModelConfig
from nnts_ray.io import mark_done
from nnts_ray.naming import RunPaths
from nnts_ray.progress import log


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
    """Ray Data callable class: one model per actor, dict-of-numpy batches in and out."""

    def __init__(self, job: ExtractJob):
        import torch

        from nnts_ray.models.build import build_model
        from nnts_ray.probes import Extractor, Reducer

        self.job = job
        self.torch = torch
        model = build_model(job.model, job.in_channels, job.num_classes)
        model.load_state_dict(torch.load(job.weights, map_location="cpu", weights_only=True))
        self.device = job.device if (job.device == "cpu" or torch.cuda.is_available()) else "cpu"
        self.extractor = Extractor(model.to(self.device).eval(), list(job.layers), job.model.probe_mode)
        self.inputs = np.load(job.inputs, mmap_mode="r")
        self.outputs = [np.load(p, mmap_mode="r+") for p in job.outputs]
        shapes = self._shapes()
        self.reducers = [Reducer(job.model, n, shapes[n], job.seed) for n in job.layers]

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        with self.torch.inference_mode():
            x = self.torch.from_numpy(np.array(self.inputs[:1])).to(self.device)
            return {n: tuple(t.shape[1:]) for n, t in self.extractor(x).items()}

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = np.asarray(batch["data"], dtype=np.int64)
        order = np.argsort(rows)
        rows = rows[order]
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(self.inputs[rows])).to(self.device)
            outs = self.extractor(x)
            bad = np.zeros((len(rows), len(self.job.layers)), dtype=np.int64)
            for j, (name, reduce, out) in enumerate(zip(self.job.layers, self.reducers, self.outputs)):
                feats = reduce(outs[name]).cpu().numpy()  # (b, d) float32
                bad[:, j] = (~np.isfinite(feats)).sum(axis=1)
                out[rows] = feats
        for out in self.outputs:
            out.flush()
        return {"row": rows, "nonfinite": bad}


def run_activations(
    paths: RunPaths, model_name: str, job: ExtractJob, n: int, dims: list[int], actors: int, gpus: int
) -> None:
    """Extract every probe point of one model; skipped when its completion marker exists."""
    import ray

    marker = paths.marker("activations", model_name)
    if marker.is_file():
        return
    for out, d in zip(job.outputs, dims):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=(n, d)).flush()
    # from_numpy: the row ids live in the driver's object store, so no read task competes with the
    # actor pool for CPUs (a read task plus one actor per CPU would deadlock a small machine).
    chunks = np.array_split(np.arange(n, dtype=np.int64), max(1, -(-n // job.model.batch_size)))
    ds = ray.data.from_numpy(chunks).map_batches(
        ActivationWriter,
        fn_constructor_kwargs={"job": job},
        batch_size=job.model.batch_size,
        compute=ray.data.ActorPoolStrategy(size=max(1, min(actors, len(chunks)))),
        num_gpus=1 if gpus else 0,
        num_cpus=0 if gpus else 1,
    )
    seen = np.zeros(n, dtype=bool)
    bad = np.zeros((n, len(job.layers)), dtype=np.int64)
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        seen[batch["row"]] = True
        bad[batch["row"]] = batch["nonfinite"]
    assert seen.all(), f"{int((~seen).sum())} rows were never extracted"
    per_layer = bad.sum(axis=0)
    for name, count, samples in zip(job.layers, per_layer, (bad > 0).sum(axis=0)):
        if count:
            for out in job.outputs:
                os.unlink(out)
            raise ConfigError(
                f"probe point {name!r} of model {model_name!r} has {int(count)} non-finite values in "
                f"{int(samples)} samples; neighbour search needs finite features"
            )
    for name, tmp in zip(job.layers, job.outputs):
        os.replace(tmp, paths.activations(model_name, name))
    mark_done(marker, {"layers": list(job.layers), "n": n})
    log(f"activations {model_name}: {len(job.layers)} probe points × {n} samples")
