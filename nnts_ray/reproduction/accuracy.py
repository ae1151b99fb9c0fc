"""Test-set accuracy of a run's analysed weights (`models/<m>.pt`) on its data set's test split.

The one place that rebuilds a model and a data set from a manifest with the core's own loaders
(`load_dataset`, `build_model`): adapt `evaluate_on_test_split` if their signatures change."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from nnts_ray.reproduction.runs import Run

WITH_TEST_SPLIT = ("mnist", "fashion_mnist", "cifar10")  # loaders that read a separate test split


@dataclass(frozen=True)
class Accuracy:
    n: int
    accuracy: float


def _only_fields(cls: type, values: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in values.items() if k in names}


def evaluate_on_test_split(run: Run, root: str, batch: int = 1000) -> Accuracy | None:
    """Accuracy on every image of the test split in `root`; None when the data set has no test split."""
    import torch

    from nnts_ray.config import DatasetConfig, ModelConfig, TrainConfig
    from nnts_ray.data import load_dataset
    from nnts_ray.models.build import build_model

    dataset = run.manifest["config"]["dataset"]
    if dataset["name"] not in WITH_TEST_SPLIT:
        return None
    dcfg = DatasetConfig(**{**_only_fields(DatasetConfig, dataset), "root": root, "split": "test", "n_samples": None})
    mc = run.model_config
    mcfg = ModelConfig(**{**_only_fields(ModelConfig, mc), "train": TrainConfig(**mc["train"])})
    test = load_dataset(dcfg, mcfg.input_size)
    model = build_model(mcfg, mcfg.in_channels or test.images.shape[1], int(run.labels.max()) + 1)
    model.load_state_dict(torch.load(run.paths.model_weights(run.model), map_location="cpu", weights_only=True))
    model.eval()
    with torch.inference_mode():
        predicted = np.concatenate([model(torch.from_numpy(np.ascontiguousarray(test.images[i:i + batch]))).argmax(1).numpy()
                                    for i in range(0, len(test), batch)])
    return Accuracy(len(test), float(np.mean(predicted == test.labels)))
