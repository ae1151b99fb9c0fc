"""The decisions the paper leaves open, as this run took them: read from the manifest where the run
records them, measured on the run's stored input where it does not (and then said so)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnts_ray.reproduction.runs import Run

EIGHT_BIT_SOURCES = ("mnist", "fashion_mnist", "cifar10")  # data sets stored as 0..255 pixels
MEASURED_ROWS = 2000  # input rows read for the measurements (enough for stable summaries, cheap at n = 60k)


@dataclass(frozen=True)
class Decision:
    question: str
    answer: str
    source: str


def on_8bit_grid(x: np.ndarray) -> float:
    """Share of non-zero values that are exact multiples of 1/255: 1.0 for 8-bit pixels that were only
    scaled, padded or cropped; well below 1 once pixels were interpolated (resized)."""
    v = x[x != 0].astype(np.float64) * 255
    return float(np.mean(np.abs(v - np.round(v)) < 1e-3)) if v.size else 1.0


def _scaling(x: np.ndarray) -> str:
    summary = f"min {x.min():.3f}, max {x.max():.3f}, mean {x.mean():.3f}, std {x.std():.3f}"
    if x.min() >= 0 and x.max() <= 1:
        return f"pixels scaled to [0, 1], not standardised ({summary})"
    if abs(x.mean()) < 0.1 and abs(x.std() - 1) < 0.2:
        return f"standardised to mean 0, std 1 ({summary})"
    return f"neither [0, 1] nor standardised ({summary})"


def _resizing(run: Run, x: np.ndarray, shape: list[int]) -> str:
    side = "×".join(map(str, shape))
    if run.manifest["config"]["dataset"]["name"] not in EIGHT_BIT_SOURCES:
        return f"model input {side}; not measurable here (the source pixels are not 8-bit)"
    share = on_8bit_grid(x)
    how = ("interpolated (resized): a padded image keeps every value on the grid" if share < 0.9
           else "not interpolated (padded, cropped or the native size)")
    return f"model input {side}; {share:.1%} of non-zero input values lie on the 1/255 grid of 8-bit pixels → {how}"


def decisions(run: Run) -> list[Decision]:
    m, conv = run.manifest, run.manifest["conventions"]
    cfg = m["config"]["dataset"]
    probes = m["models"][run.model]["probe_points"]
    manifest = "manifest.json"
    out = [
        Decision("data analysed", f"{cfg['name']} split={cfg['split']}, n = {run.n:,}"
                 + (f" (seeded stratified subsample, seed {cfg['seed']})" if cfg["n_samples"] else ""), manifest),
        Decision("training data", f"the analysed samples themselves (content digest {run.data_digest}), "
                 f"as the paper analyses its training set" if run.weights.get("source", "").startswith("trained")
                 else f"weights: {run.weights.get('source')}", manifest),
    ]
    x = run.input_features(MEASURED_ROWS) if probes[0]["reduction"] == "flatten" else None
    if x is None:
        out.append(Decision("input scaling, 28 → 32", "not measurable: the run kept no flattened input features",
                            "activations/"))
    else:
        source = f"measured on the first {len(x):,} rows of activations/…/layer={run.layers[0]}/features.npy"
        out += [Decision("input scaling / normalisation", _scaling(x), source),
                Decision("28 → 32: resize or pad", _resizing(run, x, probes[0]["shape"]), source)]
    reductions = sorted({p["reduction"] for p in probes})
    out += [
        Decision("probe-point outputs", f"{', '.join(reductions)} (every output flattened to a vector)"
                 if reductions == ["flatten"] else ", ".join(reductions), manifest),
        Decision("distance", f"{conv['metric']}: {conv['distance']}", manifest),
        Decision("self-exclusion", conv["self_exclusion"], manifest),
        Decision("ties", conv["tie_rule"], manifest),
        Decision("distance dtype", f"{conv['dtype']}; {conv['refine_ranks']}", manifest),
        Decision("search", f"{conv['index']['type']} (recall {conv['index']['recall']}); smaller k are "
                 f"{conv['smaller_k']}", manifest),
        Decision("NNTP connection", conv["nntp"]["connected"], manifest),
    ]
    return out
