"""What the paper (Hryniowski & Wong, arXiv 2012.03793) publishes and how it reads its network — the only
place its values are typed. Everything else in the report is computed from run directories.

Probe points are named as our runs name them (the paper's `I` is our `input`); `label` gives the paper's
spelling for tables and figures.
"""

from __future__ import annotations

import numpy as np

PROBE_POINTS = ("input", "C0", "R0", "P0", "C1", "R1", "P1", "C2", "R2", "M3", "R3", "O")
LABELS = {"input": "I"}

N = 60_000  # MNIST's training images, the set the paper analyses
K = (15, 100, 6000, 12000)  # Figure 1's neighbourhood sizes
NNTP_K = 15  # Table 1

# LeNet-5's conventional layers (conv → ReLU → pool; the last ones have no pool): the blocks the paper
# sees on the diagonal of Figure 1.
LAYER_GROUPS = (("input",), ("C0", "R0", "P0"), ("C1", "R1", "P1"), ("C2", "R2"), ("M3", "R3"), ("O",))

# "the last operations", where the paper sees NNTS fall most from k = 6000 to k = 12,000.
LAST_OPERATIONS = ("M3", "R3", "O")

# NNTS(R2, M3) − NNTS(P1, M3), which the paper reads as "layer 2 (C2, R2) is removable".
LAYER2_GAP = 0.05

# Table 1: thousands of maximal 0-persistent runs at k = 15, rows = first probe point, columns = last.
TABLE1_THOUSANDS_TEXT = """
I   455 122 6.99 5.95 2.51 3.02 36.0 0.99 0.59 3.94 0.32 28.7
C0      427 2.94 5.30 0.65 0.52 2.27 1.23 0.06 0.18 0.01 0.62
R0          550  2.72 0.57 0.61 10.2 0.13 0.02 0.09 0.01 0.46
P0               494  19.0 22.1 6.08 0.54 0.35 2.50 0.42 0.53
C1                    110  114  286  1.71 0.17 0.82 0.10 2.83
R1                         67.2 57.7 1.33 0.23 0.29 0.04 0.39
P1                              205  4.53 2.54 0.57 0.12 0.55
C2                                   528  36.3 8.79 0.57 0.46
R2                                        291  104  10.4 168
M3                                             170  19.1 141
R3                                                  149  128
O                                                        180
"""


def label(layer: str) -> str:
    """The paper's name of one of our probe points."""
    return LABELS.get(layer, layer)


def table1() -> np.ndarray:
    """Table 1 as a (12, 12) upper-triangular float array of run counts (not thousands)."""
    lines = [line.split() for line in TABLE1_THOUSANDS_TEXT.strip().splitlines()]
    t = np.zeros((len(PROBE_POINTS), len(PROBE_POINTS)))
    for i, (name, *values) in enumerate(lines):
        assert label(PROBE_POINTS[i]) == name and len(values) == len(PROBE_POINTS) - i, (name, values)
        t[i, i:] = [float(v) * 1000 for v in values]
    return t
