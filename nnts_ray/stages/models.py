"""Stage 2: every model of the plan made ready (checkpoint, library weights, training on the spot —
cached — or seeded random initialisation) and saved as `models/<m>.pt`, the weights every later
stage and reader uses. Training happens here, so its time is this stage's."""

from __future__ import annotations

import torch

from nnts_ray import digest
from nnts_ray.io import atomic_path, check_marker, mark_files, record_digest, say_redone
from nnts_ray.naming import RunPaths
from nnts_ray.plan import RunPlan
from nnts_ray.progress import log


def run(plan: RunPlan, paths: RunPaths) -> dict:
    from nnts_ray.models.build import prepare_model

    facts = {}
    inputs = record_digest(paths.marker("samples"))  # trained weights follow the data
    for mp in plan.models:
        files = {"weights": paths.model_weights(mp.name)}
        record, problems = check_marker(paths.marker("models", mp.name), files, inputs)
        if record is None:
            say_redone(f"model {mp.name}", problems)
            model, info = prepare_model(mp, plan.source.images, plan.source.labels, plan.data.digest,
                                        plan.config.paths.cache_dir)
            with atomic_path(files["weights"]) as tmp:
                torch.save(model.state_dict(), tmp)
            record = {"weights": info, "state_digest": digest.state(model)}
            mark_files(paths.marker("models", mp.name), files, record, inputs)
            accuracy = f", train accuracy {info['train_accuracy']:.3f}" if "train_accuracy" in info else ""
            log(f"model {mp.name}: {len(mp.probes)} probe points ({info['source']}{accuracy})")
        facts[mp.name] = {"weights": record["weights"], "state_digest": record["state_digest"]}
    return {"models": facts}
