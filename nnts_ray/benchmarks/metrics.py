"""Metrics benchmark: NNTS for every pair of probe points (+ NNTP) from stored neighbour tables, nnts_ray
(mask table / bit sets) against a vectorised numpy reference on the same sorted neighbour arrays.

    python -m nnts_ray.benchmarks.metrics --n 60000 --probes 12 --k 15 100
    python -m nnts_ray.benchmarks.metrics --n 60000 --probes 4 --k 6000 --reference-pairs 1

The reference counts |K_a ∩ K_b| per sample by broadcast comparison of the rows of two (n, k) arrays
(chunked) when k is small and by np.isin over row-offset ids (chunks of rows) when k is large; with
--reference-pairs P it times P pairs and scales to all L(L-1)/2 pairs (stated in the output).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from nnts_ray.benchmarks.common import PeakRSS, machine


NNTP_MAX_K = 100  # NNTP (and its reference) is timed up to this k


def neighbour_lists(n: int, k: int, probes: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Exact k-NN (n, k) of a chain of progressively perturbed low-dimensional point sets (real graph
    structure), one probe point at a time (at k = 6000 each is 2.9 GB as int64)."""
    from nnts_ray.knn.exact import knn_rows

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    for _ in range(probes):
        x = x + 0.25 * rng.standard_normal(x.shape).astype(np.float32)
        yield knn_rows(x, k, refine_ranks=0).rows


def write_table(rows: np.ndarray, ids: np.ndarray, out: Path, part_rows: int = 2000) -> None:
    """A stored neighbour table as a run keeps it (schemas.NEIGHBOURS columns): part files of `part_rows` samples."""
    n, k = rows.shape
    out.mkdir()
    for i, s in enumerate(range(0, n, part_rows)):
        block = rows[s : s + part_rows]
        pl.DataFrame({
            "sample_id": np.repeat(ids[s : s + len(block)], k),
            "rank": np.tile(np.arange(k, dtype=np.int32), len(block)),
            "neighbour_id": ids[block.ravel()],
            "distance": np.zeros(block.size, np.float32),
        }).write_parquet(out / f"part-{i:05d}.parquet")


def reference_intersections(a: np.ndarray, b: np.ndarray, chunk_elems: int = 1 << 26) -> np.ndarray:
    """|A_i ∩ B_i| per row of two (n, k) id arrays, vectorised numpy."""
    n, k = a.shape
    if k <= 256:
        step = max(1, chunk_elems // (k * k))
        return np.concatenate([(a[s:s + step, :, None] == b[s:s + step, None, :]).sum(axis=(1, 2))
                               for s in range(0, n, step)])
    step = max(1, chunk_elems // (8 * k))  # rows per np.isin call: bounded memory at k = 12,000
    out = []
    for s in range(0, n, step):
        offset = np.arange(min(step, n - s), dtype=np.int64)[:, None] * n
        out.append(np.isin(a[s:s + step] + offset, b[s:s + step] + offset, assume_unique=True).sum(axis=1))
    return np.concatenate(out)


def reference_nntp(lists: list[np.ndarray]) -> np.ndarray:
    """T[a, b] (alpha = 0) with numpy set operations on each probe point's undirected edge set:
    the pairs connected at every point a..b, not at a - 1 and not at b + 1 (independent of
    nnts_ray's sorted (pair, position) codes)."""
    n = lists[0].shape[0]
    edges = []
    for rows in lists:
        i, j = np.repeat(np.arange(n, dtype=np.int64), rows.shape[1]), rows.ravel().astype(np.int64)
        edges.append(np.unique(np.minimum(i, j) * n + np.maximum(i, j)))
    L = len(edges)
    t = np.zeros((L, L), np.int64)
    for a in range(L):
        alive = edges[a] if a == 0 else np.setdiff1d(edges[a], edges[a - 1], assume_unique=True)
        for b in range(a, L):
            if b > a:
                alive = np.intersect1d(alive, edges[b], assume_unique=True)
            if not len(alive):
                break
            t[a, b] = len(alive) if b == L - 1 else len(np.setdiff1d(alive, edges[b + 1], assume_unique=True))
    return t


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=60000)
    ap.add_argument("--probes", type=int, default=12)
    ap.add_argument("--k", type=int, nargs="+", default=[15, 100])
    ap.add_argument("--reference-pairs", type=int, default=0, help="time this many pairs and scale (0 = all)")
    ap.add_argument("--repeat", type=int, default=2, help="rounds of NNTS and its reference (best kept)")
    a = ap.parse_args(argv)
    from nnts_ray.metrics.nnts import nnts
    from nnts_ray.metrics.nntp import nntp
    from nnts_ray.plan import ProbePoint

    print(f"machine: {machine()}\n")
    print(f"NNTS and its reference: best of {a.repeat} rounds; NNTP and its reference: one call\n")
    print("| n | probes | k | nnts_ray NNTS (all pairs) s | numpy reference s | reference / nnts_ray | "
          "nnts_ray NNTP s | numpy NNTP reference s | reference / nnts_ray | peak RSS GiB |\n"
          "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    pairs = [(i, j) for i in range(a.probes) for j in range(i + 1, a.probes)]
    timed = pairs[: a.reference_pairs] if a.reference_pairs else pairs
    for k in a.k:
        # probes the references need in memory (int32): the NNTS pairs timed; every probe for NNTP
        kept = set(range(a.probes)) if k <= NNTP_MAX_K else {p for pair in timed for p in pair}
        ids = np.arange(a.n, dtype=np.int64)
        probes = [ProbePoint("m", f"l{v}", v) for v in range(a.probes)]
        sorted_lists, lists = {}, {}
        with tempfile.TemporaryDirectory() as tmp:
            for p, rows in zip(probes, neighbour_lists(a.n, k, a.probes)):
                write_table(rows, ids, Path(tmp) / p.layer)
                if p.position in kept:
                    lists[p.position] = rows.astype(np.int32)
                    sorted_lists[p.position] = np.sort(lists[p.position], axis=1)
                del rows
            scans = {("m", p.layer): pl.scan_parquet(Path(tmp) / p.layer / "*.parquet") for p in probes}
            rss = PeakRSS()
            first = best = t_ref = float("inf")
            with rss.watch():
                for r in range(a.repeat):  # NNTS and its reference in turn, so drift hits both alike
                    t0 = time.perf_counter()
                    table, _ = nnts(list(scans.values()), probes, ids, [k], sample_block=20000)
                    took = time.perf_counter() - t0
                    first, best = (took if r == 0 else first), min(best, took)
                    t0 = time.perf_counter()
                    ref = {(i, j): reference_intersections(sorted_lists[i], sorted_lists[j]) for i, j in timed}
                    t_ref = min(t_ref, time.perf_counter() - t0)
                t0 = time.perf_counter()
                if k <= NNTP_MAX_K:
                    runs = nntp([(p.position, scans[("m", p.layer)]) for p in probes], ids, k, [0]).runs
                t_nntp = time.perf_counter() - t0 if k <= NNTP_MAX_K else float("nan")
        t_ref *= len(pairs) / len(timed)
        i, j = timed[0]
        want = float(np.mean(ref[(i, j)] / (2 * k - ref[(i, j)])))
        got = table.filter(layer_a=f"l{i}", layer_b=f"l{j}")["jaccard"][0]
        assert abs(want - got) < 1e-12, (want, got)
        t_nntp_ref = float("nan")
        if k <= NNTP_MAX_K:
            t0 = time.perf_counter()
            want_t = reference_nntp([lists[v] for v in range(a.probes)])
            t_nntp_ref = time.perf_counter() - t0
            got_t = np.zeros_like(want_t)
            got_t[runs["first"].to_numpy(), runs["last"].to_numpy()] = runs["n_pairs"].to_numpy()
            assert np.array_equal(want_t, got_t), "NNTP differs from the numpy set reference"
        scaled = "" if len(timed) == len(pairs) else f" (scaled from {len(timed)} pairs)"
        print(f"| {a.n} | {a.probes} | {k} | {best:.2f} (first call {first:.2f}) | {t_ref:.2f}{scaled} | {t_ref / best:.2f} | "
              f"{t_nntp:.1f} | {t_nntp_ref:.1f} | {t_nntp_ref / t_nntp:.2f} | {rss.peak_gib:.1f} |", flush=True)


if __name__ == "__main__":
    main()
