"""kNN label agreement: how much of a sample's neighbourhood shares its label, at one probe point."""

from __future__ import annotations

import numpy as np


def label_agreement(rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Fraction of each sample's k neighbours with its own label: (n,) float64.

    rows: (n, k) row positions (graphs.to_rows); labels: (n,) int64 aligned with the same rows.
    """
    return (labels[rows] == labels[:, None]).mean(axis=1)


def chance_agreement(labels: np.ndarray) -> float:
    """Expected agreement if neighbours were drawn at random among the other n - 1 samples."""
    counts = np.unique(labels, return_counts=True)[1].astype(np.float64)  # (classes,)
    n = float(len(labels))
    return float((counts * (counts - 1)).sum() / (n * (n - 1)))
