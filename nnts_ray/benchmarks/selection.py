"""Large-k selection benchmark: one query part of the exact search at the paper's largest k, the way a
search actor runs it (one thread), comparing nnts_ray's (distance, row) key selection with the two
selections it replaced, measured in the same run on the same GEMM block.

    python -m nnts_ray.benchmarks.selection --features <run>/activations/model=lenet5/layer=O/features.npy

- keys (nnts_ray): uint64 (float32 bits, row) keys, np.partition, sort of the kept keys;
- torch.topk (sorted) on the distances, then a re-sort of every row holding equal distances;
- np.argpartition, then one uint64-key sort of the kept candidates.
All three must give the same first k + 1 (distances, rows); the run asserts it.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as in a search actor (one CPU each)

import numpy as np  # noqa: E402

from nnts_ray.benchmarks.common import machine  # noqa: E402


def gemm_block(index, queries: np.ndarray) -> np.ndarray:
    """‖b‖² − 2q·b + ‖q‖² for all base rows: the block every selection starts from."""
    aug = np.hstack([index.base, np.einsum("md,md->m", index.base, index.base)[:, None]])
    qa = np.hstack([-2.0 * queries, np.ones((len(queries), 1), np.float32)])
    return qa @ aug.T + np.einsum("qd,qd->q", queries, queries)[:, None]


def torch_topk(block: np.ndarray, kc: int) -> tuple[np.ndarray, np.ndarray]:
    import torch

    from nnts_ray.knn.exact import sort_rows

    vals, rows = torch.topk(torch.from_numpy(block), kc, dim=1, largest=False, sorted=True)
    d2, rows = np.maximum(vals.numpy(), 0), rows.numpy()
    tied = np.flatnonzero((d2[:, 1:] == d2[:, :-1]).any(axis=1))
    if len(tied):
        d2[tied], rows[tied] = sort_rows(d2[tied], rows[tied])
    return d2, rows


def argpartition(block: np.ndarray, kc: int) -> tuple[np.ndarray, np.ndarray]:
    from nnts_ray.knn.exact import sort_rows

    rows = np.argpartition(block, kc - 1, axis=1)[:, :kc]
    return sort_rows(np.take_along_axis(block, rows, axis=1), rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", type=Path, help="a saved (n, d) float32 .npy; default: synthetic n=60000, d=10")
    ap.add_argument("--k", type=int, default=12000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    import torch

    from nnts_ray.knn.exact import ShardIndex, candidates_needed

    torch.set_num_threads(1)
    if a.features is not None:
        x = np.ascontiguousarray(np.load(a.features), dtype=np.float32)
    else:
        x = np.random.default_rng(0).standard_normal((60000, 10)).astype(np.float32)
    n, d = x.shape
    kc = candidates_needed(a.k, n)
    index = ShardIndex(x, 0, "cpu")
    methods = {
        "keys + np.partition (nnts_ray)": lambda q: index._blocked_topk(q, kc),
        "torch.topk + re-sort of tied rows (before)": lambda q: torch_topk(gemm_block(index, q), kc),
        "np.argpartition + key sort (before that)": lambda q: argpartition(gemm_block(index, q), kc),
    }
    times = {name: [] for name in methods}
    for r in range(a.repeat):  # every round runs every method on the same queries, in turn
        q = x[r * a.queries : (r + 1) * a.queries]
        ref = None
        for name, fn in methods.items():
            t0 = time.perf_counter()
            d2, rows = fn(q)
            times[name].append(time.perf_counter() - t0)
            head = (d2[:, : a.k + 1], rows[:, : a.k + 1])
            if ref is None:
                ref = head
            assert np.array_equal(ref[0], head[0]) and np.array_equal(ref[1], head[1]), name
    print(f"machine: {machine()}; one thread\n{a.queries} queries × {n} points, d = {d}, k = {a.k} "
          f"(kc = {kc} with slack), median of {a.repeat}; features: {a.features or 'synthetic'}\n")
    base = float(np.median(times["keys + np.partition (nnts_ray)"]))
    print("| selection (GEMM included) | seconds | × nnts_ray |\n| --- | ---: | ---: |")
    for name, ts in times.items():
        print(f"| {name} | {np.median(ts):.2f} | {np.median(ts) / base:.2f} |")


if __name__ == "__main__":
    main()
