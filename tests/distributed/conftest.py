"""One trained-model cache and one undisturbed reference run, shared by every distributed test."""

from __future__ import annotations

import pytest

from nnts_ray.cli import load_config
from nnts_ray.naming import RunPaths
from nnts_ray.pipeline import run
from tests.distributed.helpers import overrides


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    """Trained once by the reference run, then found in the cache by every other run."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def reference_run(ray_cluster, model_cache, tmp_path_factory) -> RunPaths:
    """The small configuration run once, uninterrupted, in the session's single-node cluster."""
    rc = load_config(overrides(tmp_path_factory.mktemp("reference") / "run", model_cache))
    assert not run(rc).already_complete
    return RunPaths(rc.run_dir)
