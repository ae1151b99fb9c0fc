"""Plain-text summary of a finished run: the NNTS matrix per k and the NNTP run-count table."""

from __future__ import annotations

import polars as pl

from nnts_ray.naming import RunPaths


def _matrix(rows: pl.DataFrame, value: str, order: list[str]) -> str:
    width = max(6, *(len(x) for x in order))
    lookup = {(a, b): v for a, b, v in rows.select("layer_a", "layer_b", value).iter_rows()}
    head = " " * width + " " + " ".join(f"{x:>{width}}" for x in order)
    lines = [head]
    for a in order:
        cells = " ".join(f"{lookup.get((a, b), float('nan')):>{width}.3f}" for b in order)
        lines.append(f"{a:>{width}} {cells}")
    return "\n".join(lines)


def _runs(rows: pl.DataFrame, order: list[str]) -> str:
    width = max(7, *(len(x) for x in order))
    lookup = {(a, b): v for a, b, v in rows.select("layer_first", "layer_last", "n_pairs").iter_rows()}
    corner = "first\\last"
    lines = [f"{corner:>{width}} " + " ".join(f"{x:>{width}}" for x in order)]
    for i, a in enumerate(order):
        cells = " ".join(
            f"{lookup.get((a, b), 0):>{width}d}" if j >= i else " " * width for j, b in enumerate(order)
        )
        lines.append(f"{a:>{width}} {cells}")
    return "\n".join(lines)


def summary(run_dir: str) -> str:
    """What a person reads after `nnts-ray`: where the run is and its main tables."""
    paths = RunPaths(run_dir)
    layers = pl.read_parquet(paths.metric("layers")).sort("model", "position")
    nnts = pl.read_parquet(paths.metric("nnts"))
    nntp = pl.read_parquet(paths.metric("nntp"))
    out = [f"run: {paths.root}"]
    for model in layers["model"].unique(maintain_order=True):
        order = layers.filter(model=model)["layer"].to_list()
        within = nnts.filter((pl.col("model_a") == model) & (pl.col("model_b") == model))
        for k in sorted(within["k"].unique()):
            sel = within.filter(k=k)
            out.append(f"\nNNTS (Jaccard), model {model}, k={k}, n={sel['n_samples'][0]} "
                       f"(chance {sel['chance_jaccard'][0]:.4f}):\n" + _matrix(sel, "jaccard", order))
        mp = nntp.filter(model=model)
        for (k, alpha), sel in mp.group_by("k", "alpha", maintain_order=True):
            out.append(f"\nNNTP maximal-run counts T[first, last], model {model}, k={k}, alpha={alpha} "
                       f"({sel['n_pairs'].sum()} runs):\n" + _runs(sel, order))
    out.append(f"\ntables: {paths.metrics_dir}/  (dashboard: nnts-ray-dashboard --runs {paths.root.parent})")
    return "\n".join(out)
