"""Shared fixtures: one real local Ray cluster per test session; `gpu` tests only where CUDA is."""

from __future__ import annotations

import os
from typing import Callable

import numpy as np
import pytest


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` need a CUDA device: skipped (with the reason) where there is none."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (none here); the same code runs on CPU tensors elsewhere")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray cluster, started once (starting Ray costs seconds)."""
    import ray

    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def sample_ids() -> Callable[[int], np.ndarray]:
    """Ascending ids that are deliberately not 0..n-1, so every mapping through sample_ids is exercised."""
    return lambda n: (1000 + 7 * np.arange(n)).astype(np.int64)


def random_rows(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """(n, k) random neighbour rows: k distinct positions per row, never the row itself."""
    rows = np.argsort(rng.random((n, n - 1)), axis=1)[:, :k]  # (n, k) in 0..n-2
    return rows + (rows >= np.arange(n)[:, None])  # skip self


@pytest.fixture(scope="session")
def random_graph() -> Callable[[np.random.Generator, int, int], np.ndarray]:
    return random_rows
