"""Where a run's search time goes, probe point by probe point: one query part of every distinct
feature matrix of a finished run, searched the way a search actor does it (one thread, the stage's
own calls), timed against that part's GEMM floor at one core's measured rate.

    python -m nnts_ray.benchmarks.parts --run <runs_root>/<run> [--queries 2500] [--k 100] [--sets 6000 12000]

With --sets the part goes through the set-only path (`search_with_sets`) as at the paper's scale.
The last lines list the probe points furthest above their floor.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as in a search actor (one CPU each)

import numpy as np  # noqa: E402

from nnts_ray.benchmarks.common import machine, matmul_gflops  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="a finished run directory (it has activations/)")
    ap.add_argument("--queries", type=int, default=2500, help="queries in the part")
    ap.add_argument("--k", type=int, default=100, help="ranks searched and stored")
    ap.add_argument("--sets", type=int, nargs="*", default=[], help="set-only k (the paper's n/10, n/5)")
    args = ap.parse_args(argv)
    from nnts_ray.knn.exact import ShardIndex, candidates_needed, finalize, neighbours_of, prepare, shard_candidates

    files = sorted(args.run.glob("activations/model=*/layer=*/features.npy"))
    if not files:
        raise SystemExit(f"--run {args.run}: no activations/model=*/layer=*/features.npy there")
    rate = matmul_gflops() * 1e9  # one thread's rate (OMP_NUM_THREADS=1 above, as in an actor)
    print(f"machine: {machine()}; one core's float32 GEMM {rate / 1e9:.0f} GFLOP/s")
    seen, rows = set(), []
    for f in files:
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        if digest in seen:  # identical features are searched once by the stage too
            continue
        seen.add(digest)
        x = np.load(f)
        n = len(x)
        x = prepare(x.reshape(n, -1), "l2")
        q = min(args.queries, n)
        index, qrows = ShardIndex(x), np.arange(q, dtype=np.int64)
        t = time.perf_counter()
        if args.sets:
            d2, cand, _ = index.search_with_sets(x[:q], qrows, args.k + 1, candidates_needed(args.k, n), 128, args.sets)
            finalize(qrows, d2, cand, args.k, "l2")
        else:
            neighbours_of([shard_candidates(index, x[:q], args.k, n, 128)], qrows, args.k, n, "l2")
        seconds = time.perf_counter() - t
        floor = 2 * q * n * x.shape[1] / rate
        name = f"{f.parent.parent.name[6:]}/{f.parent.name[6:]}"
        rows.append((seconds, floor, x.shape[1], name))
        print(f"{name}: d = {x.shape[1]}, {seconds:.2f} s, floor {floor:.2f} s", flush=True)
    total, floor = sum(r[0] for r in rows), sum(r[1] for r in rows)
    print(f"{len(rows)} distinct probe points, one part of {args.queries} queries each: {total:.1f} s against a "
          f"{floor:.1f} s floor ({total / floor:.2f}x)")
    for seconds, part_floor, d, name in sorted(rows, key=lambda r: r[1] - r[0])[:10]:
        print(f"  {name}: {seconds - part_floor:.2f} s above its floor (d = {d})")


if __name__ == "__main__":
    main()
