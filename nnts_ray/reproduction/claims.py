"""The paper's claims as small functions of metric matrices, each returning a `Claim`: a verdict computed
from the numbers under a stated threshold, the numbers, and a sentence that shows them.

NNTS claims take Jaccard matrices (one per k where k matters); NNTP claims take a run-count matrix T,
so they apply to our runs and to the paper's own Table 1 alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from nnts_ray.reproduction import paper
from nnts_ray.reproduction.consistency import both_connected, edge_counts
from nnts_ray.reproduction.runs import LayerMatrix

HOLDS, PARTLY, FAILS, UNTESTABLE = "holds", "partly", "does not hold", "not testable"


@dataclass(frozen=True)
class Claim:
    key: str
    statement: str  # the paper's claim, in a few words
    threshold: str  # the rule that turns the numbers into the verdict
    verdict: str
    numbers: dict[str, float]
    explanation: str
    headline: str = ""  # the deciding numbers in a few characters, for tables of many claims


def _verdict(*conditions: bool) -> str:
    """All conditions: holds; some: partly; none: does not hold."""
    return HOLDS if all(conditions) else PARTLY if any(conditions) else FAILS


def _untestable(key: str, statement: str, threshold: str, why: str) -> Claim:
    return Claim(key, statement, threshold, UNTESTABLE, {}, why, "—")


def _upper(m: LayerMatrix) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the off-diagonal upper triangle."""
    return np.triu_indices(len(m.names), 1)


def _fmt_pair(m: LayerMatrix, i: int, j: int) -> str:
    return f"{paper.label(m.names[i])}→{paper.label(m.names[j])}"


BLOCKS = ("NNTS is block-diagonal, blocks = conventional layers (conv→ReLU→pool)",
          "holds when consecutive probe points inside a layer are on average more similar than consecutive "
          "points across a layer boundary AND at least half of the boundaries are among the largest drops "
          "(as many drops as boundaries); partly when one of the two")


def block_diagonal(s: LayerMatrix, groups=paper.LAYER_GROUPS) -> Claim:
    group = {name: g for g, members in enumerate(groups) for name in members}
    if not all(n in group for n in s.names):
        outside = [n for n in s.names if n not in group]
        return _untestable("block-diagonal", *BLOCKS, f"probe points {outside} are in no layer group")
    steps = np.array([s.values[i, i + 1] for i in range(len(s.names) - 1)])  # (L-1,)
    boundary = np.array([group[a] != group[b] for a, b in zip(s.names, s.names[1:])])
    drops = np.argsort(steps, kind="stable")[: boundary.sum()]  # the weakest consecutive links
    matched = int(boundary[drops].sum())
    within, across = float(steps[~boundary].mean()), float(steps[boundary].mean())
    listed = ", ".join(f"{_fmt_pair(s, i, i + 1)} {steps[i]:.2f}{'' if boundary[i] else ' (inside a layer)'}"
                       for i in sorted(drops))
    return Claim("block-diagonal", *BLOCKS, _verdict(within > across, matched * 2 >= boundary.sum()),
                 {"within_layer_step": within, "across_boundary_step": across, "boundaries_in_drops": matched,
                  "boundaries": int(boundary.sum())},
                 f"consecutive NNTS inside a layer {within:.3f} vs across a boundary {across:.3f}; "
                 f"the {boundary.sum()} weakest links: {listed} ({matched} of them layer boundaries)",
                 f"{within:.2f} vs {across:.2f}, {matched}/{boundary.sum()} boundaries")


DECAY = ("similarity decays with the distance between probe points",
         "Spearman ρ between NNTS(a, b) and |position(a) − position(b)| over all pairs a < b: "
         "holds at ρ ≤ −0.5, partly at −0.5 < ρ < 0")


def decays_with_distance(s: LayerMatrix) -> Claim:
    i, j = _upper(s)
    if np.ptp(s.values[i, j]) == 0:
        return Claim("decay with distance", *DECAY, FAILS, {}, "NNTS is the same for every pair: it does not vary at all",
                     "constant")
    rho = float(spearmanr(s.values[i, j], j - i).statistic)
    away = [s.values[a, b + 1] <= s.values[a, b] for a in range(len(s.names)) for b in range(a + 1, len(s.names) - 1)]
    away += [s.values[a - 1, b] <= s.values[a, b] for b in range(len(s.names)) for a in range(1, b)]
    share = float(np.mean(away))
    return Claim("decay with distance", *DECAY, HOLDS if rho <= -0.5 else PARTLY if rho < 0 else FAILS,
                 {"spearman_rho": rho, "share_of_steps_away_not_rising": share},
                 f"ρ = {rho:.2f}; moving one probe point further away from a fixed one lowers or keeps NNTS in "
                 f"{share:.0%} of the {len(away)} steps", f"ρ = {rho:.2f}")


def _off_diagonal_mean(m: LayerMatrix) -> float:
    i, j = _upper(m)
    return float(m.values[i, j].mean())


def _around_class_size(mats: dict[int, LayerMatrix], class_size: float | None) -> tuple[list[int], list[int]]:
    ks = sorted(mats)
    if class_size is None:
        return [], ks
    return [k for k in ks if k <= class_size], [k for k in ks if k > class_size]


RISE = ("NNTS rises with k up to about the class size, then falls (paper: 15 < 100 < 6000 > 12,000)",
        "mean off-diagonal NNTS increases at every step between the ks at or below the mean class size "
        "(n / classes), and the first k above it is lower than the last k at or below it; partly when only one "
        "of the two is seen")


def rises_then_falls_with_k(mats: dict[int, LayerMatrix], class_size: float | None) -> Claim:
    up, down = _around_class_size(mats, class_size)
    if not up or not down:
        return _untestable("peak near class size", *RISE,
                           f"needs ks on both sides of the class size {class_size}; the run has {sorted(mats)}")
    means = {k: _off_diagonal_mean(mats[k]) for k in sorted(mats)}
    rises = len(up) >= 2 and all(means[a] < means[b] for a, b in zip(up, up[1:]))
    falls = means[down[0]] < means[up[-1]]
    i, j = _upper(mats[up[-1]])
    fell = float(np.mean(mats[down[0]].values[i, j] < mats[up[-1]].values[i, j]))
    trend = ", ".join(f"k={k}: {v:.3f}" for k, v in means.items())
    return Claim("peak near class size", *RISE, _verdict(rises, falls),
                 {**{f"mean_k{k}": v for k, v in means.items()}, "class_size": float(class_size),
                  "share_of_cells_falling": fell},
                 f"mean NNTS {trend} (class size {class_size:.0f}); from k={up[-1]} to k={down[0]} "
                 f"{fell:.0%} of the cells fall"
                 + ("" if len(up) >= 2 else "; the rise needs two ks at or below the class size"),
                 " → ".join(f"{v:.2f}" for v in means.values()))


LAST = ("the fall after the class size is largest in the last operations (" + ", ".join(paper.LAST_OPERATIONS) + ")",
        "mean NNTS fall from the last k at or below the class size to the first k above it, over pairs with a "
        "last operation, exceeds the mean fall over the other pairs and is positive")


def last_operations_fall_most(mats: dict[int, LayerMatrix], class_size: float | None,
                              last: tuple[str, ...] = paper.LAST_OPERATIONS) -> Claim:
    up, down = _around_class_size(mats, class_size)
    if not up or not down or not mats[up[-1]].has(*last):
        return _untestable("last operations fall most", *LAST,
                           f"needs ks on both sides of the class size and probe points {last}")
    peak, after = mats[up[-1]], mats[down[0]]
    i, j = _upper(peak)
    fall = peak.values[i, j] - after.values[i, j]  # (pairs,)
    is_last = np.array([peak.names[a] in last or peak.names[b] in last for a, b in zip(i, j)])
    in_last, other = float(fall[is_last].mean()), float(fall[~is_last].mean())
    worst = int(np.argmax(fall))
    return Claim("last operations fall most", *LAST, HOLDS if in_last > max(other, 0.0) else FAILS,
                 {"fall_last_operations": in_last, "fall_other_pairs": other, "largest_fall": float(fall[worst])},
                 f"k={up[-1]} → {down[0]}: mean fall {in_last:+.3f} in pairs with a last operation vs {other:+.3f} "
                 f"elsewhere; largest fall {fall[worst]:+.3f} at ({paper.label(peak.names[i[worst]])}, "
                 f"{paper.label(peak.names[j[worst]])})", f"{in_last:+.3f} vs {other:+.3f}")


LAYER2 = ("NNTS(P1, M3) and NNTS(R2, M3) differ by about 0.05, read as 'layer 2 is removable'",
          f"|NNTS(R2, M3) − NNTS(P1, M3)| ≤ {2 * paper.LAYER2_GAP:.2f} (twice the paper's 'about "
          f"{paper.LAYER2_GAP}')")


def layer2_gap(s: LayerMatrix) -> Claim:
    if not s.has("P1", "R2", "M3"):
        return _untestable("layer-2 gap", *LAYER2, "needs probe points P1, R2 and M3")
    gap = s.at("R2", "M3") - s.at("P1", "M3")
    through = s.at("P1", "R2")
    return Claim("layer-2 gap", *LAYER2, HOLDS if abs(gap) <= 2 * paper.LAYER2_GAP else FAILS,
                 {"nnts_P1_M3": s.at("P1", "M3"), "nnts_R2_M3": s.at("R2", "M3"), "gap": gap, "nnts_P1_R2": through},
                 f"NNTS(R2, M3) {s.at('R2', 'M3'):.3f} − NNTS(P1, M3) {s.at('P1', 'M3'):.3f} = {gap:+.3f}; layer 2 "
                 f"itself keeps NNTS(P1, R2) = {through:.3f} of the neighbourhoods (a small gap says M3 sees P1 about "
                 f"as well as R2, not that R2 = P1; removability needs retraining without the layer, which NNTS "
                 f"does not test)", f"gap {gap:+.3f}")


TRANSIENT = ("most NNTP connections are transient (the diagonal of T)",
             "holds when the diagonal holds more than half of all maximal runs Σ_v T[v, v] / Σ T")


def transient_majority(t: LayerMatrix) -> Claim:
    share = float(np.trace(t.values) / t.values.sum())
    per_v = np.diag(t.values) / edge_counts(t.values)  # transient share of each probe point's pairs
    lo, hi = int(np.argmin(per_v)), int(np.argmax(per_v))
    return Claim("mostly transient", *TRANSIENT, HOLDS if share > 0.5 else FAILS,
                 {"diagonal_share": share, "min_transient_share_of_E_v": float(per_v[lo]),
                  "max_transient_share_of_E_v": float(per_v[hi])},
                 f"{share:.1%} of all runs are transient; per probe point the transient share of |E_v| ranges from "
                 f"{per_v[lo]:.1%} ({paper.label(t.names[lo])}) to {per_v[hi]:.1%} ({paper.label(t.names[hi])})",
                 f"{share:.0%} transient")


PERSIST = ("a small set of pairs persists from input to output",
           "holds when T[first, last] > 0 and it is under 10% of the pairs connected at the first probe point")


def persists_input_to_output(t: LayerMatrix, n: int) -> Claim:
    through = float(t.values[0, -1])
    e = edge_counts(t.values)
    share = through / e[0]
    pairs = n * (n - 1) / 2
    chance = pairs * float(np.prod(e / pairs))  # expected if the graphs were independent
    return Claim("input-to-output persistence", *PERSIST, HOLDS if 0 < through and share < 0.10 else FAILS,
                 {"T_first_last": through, "share_of_first_pairs": share, "share_of_all_runs": through / t.values.sum(),
                  "expected_if_independent": chance},
                 f"T[{paper.label(t.names[0])}, {paper.label(t.names[-1])}] = {through:,.0f} pairs: {share:.1%} of the "
                 f"{e[0]:,.0f} pairs connected at {paper.label(t.names[0])} (independent graphs would give {chance:.2g})",
                 f"{share:.1%} of first pairs")


UNDO = ("C2 undoes C1: the pairs C1 creates last through P1 and end at C2 (cell (C1, P1) of Table 1)",
        "holds when T[C1, P1] is the largest cell of row C1 and holds more than half of the runs that start at C1; "
        "partly when one of the two")


def c2_undoes_c1(t: LayerMatrix) -> Claim:
    if not t.has("C1", "P1", "C2"):
        return _untestable("C2 undoes C1", *UNDO, "needs probe points C1, P1 and C2")
    row = t.values[t.index("C1")]
    cell = t.at("C1", "P1")
    share = cell / row.sum()
    e = edge_counts(t.values)
    survive = [both_connected(t.values, v, v + 1) / e[v] for v in range(len(t.names) - 1)]  # pairs kept per step
    at_c2 = survive[t.index("P1")]
    return Claim("C2 undoes C1", *UNDO, _verdict(cell == row.max(), share > 0.5),
                 {"T_C1_P1": cell, "share_of_C1_runs": share, "kept_P1_to_C2": at_c2,
                  "median_kept_per_step": float(np.median(survive))},
                 f"T[C1, P1] = {cell:,.0f} = {share:.0%} of the runs starting at C1 (largest cell of the row: "
                 f"{'yes' if cell == row.max() else 'no'}); of the pairs connected at P1, {at_c2:.0%} are still "
                 f"connected at C2 (median over all consecutive steps {np.median(survive):.0%})",
                 f"{share:.0%} of C1 runs, {at_c2:.0%} kept")


def nnts_claims(mats: dict[int, LayerMatrix], class_size: float | None) -> dict[str, dict[int, Claim] | Claim]:
    """Every NNTS claim: the per-k ones for each k, the across-k ones once."""
    return {
        "block-diagonal": {k: block_diagonal(m) for k, m in mats.items()},
        "decay with distance": {k: decays_with_distance(m) for k, m in mats.items()},
        "layer-2 gap": {k: layer2_gap(m) for k, m in mats.items()},
        "peak near class size": rises_then_falls_with_k(mats, class_size),
        "last operations fall most": last_operations_fall_most(mats, class_size),
    }


def nntp_claims(t: LayerMatrix, n: int) -> list[Claim]:
    return [transient_majority(t), persists_input_to_output(t, n), c2_undoes_c1(t)]
