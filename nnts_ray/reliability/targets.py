"""Everything the harness calls in the product, named once: when an entry point or an API moves,
only this file changes."""

from __future__ import annotations

import importlib
from typing import Any, Callable

# Console scripts as pyproject.toml declares them: name -> "module:function".
ENTRY_POINTS = {
    "nnts-ray": "nnts_ray.cli:main",
    "nnts-ray-layers": "nnts_ray.cli:layers_main",
    "nnts-ray-dashboard": "dashboard.cli:main",
}
ANALYSE = "nnts_ray.api:analyse"  # notebook API: analyse(features, k=, nntp_k=, alpha=, ...)
KNN_ROWS = "nnts_ray.knn.exact:knn_rows"  # exact search: knn_rows(x, k, metric) -> .rows, .distance
DASHBOARD_APP = "dashboard:APP"  # the Streamlit entry page (a Path)
DASHBOARD_RUNS_ENV = "dashboard:RUNS_ENV"  # environment variable naming the runs directory
CATALOG_SCAN = "nnts_ray.catalog:scan"  # the run catalog the dashboard lists

# Modules a forked case process finds already imported (they cost seconds to import each time):
# the libraries, then every module named above. A module that has moved is skipped, not an error.
PRELOAD = ("numpy", "torch", "torchvision", "polars", "pyarrow.parquet", "hydra", "omegaconf",
           "hydra._internal.config_loader_impl", "nnts_ray.config", "nnts_ray.pipeline", "streamlit.testing.v1",
           *dict.fromkeys(t.partition(":")[0] for t in (*ENTRY_POINTS.values(), ANALYSE, KNN_ROWS, CATALOG_SCAN)))


def resolve(target: str) -> Any:
    """The object named by "module:attribute"."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def entry_point(name: str) -> Callable[[], Any]:
    return resolve(ENTRY_POINTS[name])


def bootstrap(name: str) -> str:
    """`python -c` text that behaves like the installed console script `name`."""
    module, _, func = ENTRY_POINTS[name].partition(":")
    return f"import sys; from {module} import {func} as m; sys.argv = [{name!r}, *sys.argv[1:]]; sys.exit(m())"
