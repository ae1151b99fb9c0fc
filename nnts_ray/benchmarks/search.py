"""Neighbour-search benchmark: nnts_ray's exact search (in process, and the Ray search stage with its
shard actors) against bare single-process FAISS IndexFlatL2 and scikit-learn's brute force, on the
same float32 features; effective GFLOP/s (2·n²·d) against the machine's measured GEMM rate.

    python -m nnts_ray.benchmarks.search --n 20000 --d 256 --k 15
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from nnts_ray.benchmarks.common import best_of, machine, matmul_gflops, timed


def features(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Clustered low-rank float32 features, like a network's activations (not isotropic noise)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, 16))
    z = centres[rng.integers(0, 20, n)] + 0.5 * rng.standard_normal((n, 16))
    return np.maximum(z @ rng.standard_normal((16, d)), 0).astype(np.float32)


def bench(n: int, d: int, k: int, repeat: int, with_sklearn: bool, with_ray: bool) -> list[tuple[str, float]]:
    import faiss

    from nnts_ray.knn.exact import knn_rows

    x = features(n, d)
    rows = []

    def bare_faiss():
        index = faiss.IndexFlatL2(d)
        index.add(x)
        index.search(x, k + 1)

    rows.append(("bare FAISS IndexFlatL2 (baseline)", best_of(bare_faiss, repeat)))
    rows.append(("nnts_ray knn_rows (in process)", best_of(lambda: knn_rows(x, k), repeat)))
    if with_ray:
        rows.append(("nnts_ray search stage (Ray, 2 warm actors, writes Parquet)", _ray_stage(x, k, repeat)))
    if with_sklearn:
        from sklearn.neighbors import NearestNeighbors

        rows.append(("scikit-learn brute force", best_of(
            lambda: NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(x).kneighbors(x), 1)))
    return rows


def _ray_stage(x: np.ndarray, k: int, repeat: int) -> float:
    """The pipeline's search stage on one probe point: features file → search actors → Parquet parts.
    Actors are started once (as a run starts them once for all its probe points) and warmed up."""
    import ray

    from nnts_ray.naming import RunPaths
    from nnts_ray.stages.neighbours import SearchPlan, search_probe, start_searchers

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    searchers = start_searchers(2, 0)
    plan = SearchPlan(k=k, metric="l2", query_block=4096, refine_ranks=128)
    ids = np.arange(len(x), dtype=np.int64)
    with tempfile.TemporaryDirectory() as tmp:
        def prepare_dir(i: int) -> RunPaths:  # a fresh run directory, features written outside the timing
            paths = RunPaths(Path(tmp) / str(i))
            paths.activations("bench", "x").parent.mkdir(parents=True)
            np.save(paths.activations("bench", "x"), x)
            return paths

        dirs = [prepare_dir(i) for i in range(repeat + 1)]
        search_probe(dirs[0], "bench", "x", ids, plan, searchers)  # warm-up: actors up, libraries loaded
        best = min(timed(lambda p=p: search_probe(p, "bench", "x", ids, plan, searchers)) for p in dirs[1:])
    for s in searchers:
        ray.kill(s)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--k", type=int, default=15)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-sklearn", action="store_true")
    ap.add_argument("--no-ray", action="store_true")
    a = ap.parse_args()
    gflops = matmul_gflops()
    rows = bench(a.n, a.d, a.k, a.repeat, not a.no_sklearn, not a.no_ray)
    base = rows[0][1]
    flops = 2 * a.n * a.n * a.d
    print(f"machine: {machine()}; numpy float32 matmul {gflops:.0f} GFLOP/s")
    print(f"n={a.n} d={a.d} k={a.k} (best of {a.repeat})\n")
    print("| method | seconds | × bare FAISS | GFLOP/s | % of matmul rate |\n| --- | ---: | ---: | ---: | ---: |")
    for name, sec in rows:
        print(f"| {name} | {sec:.2f} | {sec / base:.2f} | {flops / sec / 1e9:.0f} | {100 * flops / sec / 1e9 / gflops:.0f}% |")


if __name__ == "__main__":
    main()
