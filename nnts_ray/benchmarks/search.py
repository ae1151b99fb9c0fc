"""Neighbour-search benchmark: nnts_ray's exact search (in process, and the Ray search stage with its
shard actors) against bare single-process FAISS IndexFlatL2 and scikit-learn's brute force, on the
same float32 features; effective GFLOP/s (2·n²·d) against the machine's measured GEMM rate.

    python -m nnts_ray.benchmarks.search --n 20000 --d 256 --k 15
    python -m nnts_ray.benchmarks.search --n 60000 --k 15 --features <run>/activations/model=lenet5/layer=P1/features.npy
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

from nnts_ray.benchmarks.common import machine, matmul_gflops, timed


def features(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Clustered low-rank float32 features, like a network's activations (not isotropic noise)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, 16))
    z = centres[rng.integers(0, 20, n)] + 0.5 * rng.standard_normal((n, 16))
    return np.maximum(z @ rng.standard_normal((16, d)), 0).astype(np.float32)


def bench(x: np.ndarray, k: int, repeat: int, with_sklearn: bool, with_ray: bool) -> list[tuple[str, float]]:
    """Best time of each method over `repeat` rounds; every round times every method in turn, so
    drift in the machine's speed (a shared VM) hits all methods alike instead of whichever ran last.
    A method is a `prepare()` returning the call to time (preparation is not timed)."""
    import faiss

    from nnts_ray.knn.exact import knn_rows

    d = x.shape[1]

    def bare_faiss():
        index = faiss.IndexFlatL2(d)
        index.add(x)
        index.search(x, k + 1)

    methods = {"bare FAISS IndexFlatL2 (baseline)": lambda: bare_faiss,
               "nnts_ray knn_rows (in process)": lambda: lambda: knn_rows(x, k)}
    with ExitStack() as stack:
        if with_ray:
            methods["nnts_ray search stage (Ray, 2 warm actors, writes Parquet)"] = stack.enter_context(_ray_stage(x, k))
        best = {name: float("inf") for name in methods}
        for _ in range(repeat):
            for name, prepare in methods.items():
                best[name] = min(best[name], timed(prepare()))
    rows = list(best.items())
    if with_sklearn:  # one round: it is the slowest by far and not the baseline
        from sklearn.neighbors import NearestNeighbors

        rows.append(("scikit-learn brute force", timed(
            lambda: NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(x).kneighbors(x))))
    return rows


@contextmanager
def _ray_stage(x: np.ndarray, k: int):
    """The pipeline's search stage on one probe point (features file → search actors → Parquet parts,
    dispatched as the stage dispatches them). Yields a `prepare()` that writes the features into a
    fresh run directory and returns the search into it. Actors are started once (as a run starts
    them once for all its probe points) and warmed up before any timing."""
    import ray

    from nnts_ray.cluster import run_tasks, start_actors, stop_actors
    from nnts_ray.naming import RunPaths
    from nnts_ray.plan import SearchSpec
    from nnts_ray.stages.neighbours import PartJob, ShardSearcher, ShardSpec, part_rows

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    searchers = start_actors(ShardSearcher, 2, 0, "cpu")
    spec, n = SearchSpec(k=k), len(x)
    ids_ref = ray.put(np.arange(n, dtype=np.int64))
    step = part_rows(n, spec.query_block, len(searchers))
    with tempfile.TemporaryDirectory() as tmp:
        runs = iter(range(1 << 30))

        def prepare():
            paths = RunPaths(Path(tmp) / str(next(runs)))
            features = paths.activations("bench", "x")
            features.parent.mkdir(parents=True)
            np.save(features, x)
            jobs = [PartJob(ShardSpec(str(features), 0, n, "l2"), lo, min(lo + step, n),
                            str(paths.neighbours_part("bench", "x", i))) for i, lo in enumerate(range(0, n, step))]
            return lambda: run_tasks(searchers, jobs, lambda a, job: a.search_part.remote(job, spec, ids_ref),
                                     lambda job, records: None)

        prepare()()  # warm-up: actors up, libraries loaded
        yield prepare
    stop_actors(searchers)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--k", type=int, default=15)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--features", type=Path, help="a saved (n, d) float32 .npy (e.g. a run's "
                    "activations/<model>/layer=<name>/features.npy) instead of synthetic features; "
                    "its first --n rows are used")
    ap.add_argument("--no-sklearn", action="store_true")
    ap.add_argument("--no-ray", action="store_true")
    a = ap.parse_args()
    gflops = matmul_gflops()
    if a.features is not None:
        x = np.ascontiguousarray(np.load(a.features, mmap_mode="r")[: a.n], dtype=np.float32)
        a.n, a.d = x.shape
    else:
        x = features(a.n, a.d)
    rows = bench(x, a.k, a.repeat, not a.no_sklearn, not a.no_ray)
    base = rows[0][1]
    flops = 2 * a.n * a.n * a.d
    print(f"machine: {machine()}; numpy float32 matmul {gflops:.0f} GFLOP/s")
    source = a.features or "synthetic clustered ReLU features"
    print(f"n={a.n} d={a.d} k={a.k} (best of {a.repeat}); features: {source}\n")
    print("| method | seconds | × bare FAISS | GFLOP/s | % of matmul rate |\n| --- | ---: | ---: | ---: | ---: |")
    for name, sec in rows:
        print(f"| {name} | {sec:.2f} | {sec / base:.2f} | {flops / sec / 1e9:.0f} | {100 * flops / sec / 1e9 / gflops:.0f}% |")


if __name__ == "__main__":
    main()
