"""Shared inputs of the analysis tests: neighbour tables from the brute-force reference, ids that are
not 0..n-1, random graphs."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from tests.reference import knn_ids

Knn = Callable[[np.ndarray, int, np.ndarray], tuple[np.ndarray, np.ndarray]]


@pytest.fixture(scope="session")
def knn() -> Knn:
    return knn_ids
