"""Hypothesis strategies: small feature chains on an integer grid, so that duplicates and exactly
equal distances are common (the tie rule is exercised) and every distance is exact in float32 and
float64 alike (the brute-force reference and the product must then agree exactly)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nnts_ray.reliability import targets

analyse = targets.resolve(targets.ANALYSE)
knn_rows = targets.resolve(targets.KNN_ROWS)


def grid(n: int, d: int, values: int = 3):
    """(n, d) float32 with entries in {-values … values}: many duplicate rows and tied distances."""
    return arrays(np.int8, (n, d), elements=st.integers(-values, values)).map(lambda a: a.astype(np.float32))


@st.composite
def chains(draw, min_n: int = 5, max_n: int = 24, max_layers: int = 4) -> list[np.ndarray]:
    """2 … max_layers probe points of n samples each, of 1 … 4 dims."""
    n = draw(st.integers(min_n, max_n))
    return [draw(grid(n, draw(st.integers(1, 4)))) for _ in range(draw(st.integers(2, max_layers)))]


def ks(n: int, most: int = 2):
    """Sorted distinct neighbourhood sizes in 1 … n-1."""
    return st.lists(st.integers(1, n - 1), min_size=1, max_size=most, unique=True).map(sorted)
