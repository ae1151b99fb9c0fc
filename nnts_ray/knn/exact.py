"""Exact k-nearest-neighbour search with the conventions of SPEC §1.

All arrays here are in *row space*: row r of a probe point's feature matrix belongs to the r-th
sample in ascending `sample_id` order, so ordering by row is ordering by sample id and the tie rule
"(distance, neighbour id) ascending" is "(distance, row) ascending". Callers map rows to ids.

Search is split so that it can be sharded (see `nnts_ray.stages.neighbours`): every database shard
returns its own top `kc` candidates with the leading ranks re-scored exactly (`ShardIndex.search`),
candidates from all shards are merged (`merge_candidates`), and `finalize` excludes self by index and
keeps k. The merged top-kc over shards equals the global top-kc, so sharded == single search.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

GPU_FAISS_K_LIMIT = 2048  # faiss-gpu flat indexes cap k here; larger k goes through torch on GPU
FAISS_CPU_K_LIMIT = 256  # above this, FAISS's per-query heaps lose to GEMM + key selection (measured)
_GATHER_BUDGET = 1 << 24  # floats gathered at once while re-scoring candidates
_BLOCK_BUDGET = 1 << 26  # distance-block elements (256 MB of float32) in the blocked exact path
_KEY_ROWS = 64  # query rows selected at once in the blocked path ((64, m) uint64 keys)


@dataclass(frozen=True)
class Neighbours:
    """k nearest neighbours of a block of queries, sorted by (distance, row)."""

    rows: np.ndarray  # (q, k) int64 neighbour rows
    distance: np.ndarray  # (q, k) float32, Euclidean (l2) or 1 - cos (cosine)


def prepare(x: np.ndarray, metric: str) -> np.ndarray:
    """Features as searched: l2 as they are (exact re-scoring by direct differences keeps exact ties
    exact, which centring would not); cosine L2-normalised (all-zero rows stay zero: they are at
    distance 1 from everything)."""
    x = np.asarray(x, dtype=np.float32)
    if metric == "l2":
        return x
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32, copy=False)
    raise ValueError(f"metric={metric!r} is not allowed; choose one of: l2, cosine")


def candidates_needed(k: int, n: int) -> int:
    """Candidates each shard returns: k, +1 for self, + a small slack so that float error in the
    fast GEMM distances cannot push a true neighbour out before exact re-scoring."""
    return min(n, k + 1 + max(4, k // 64))


def sort_rows(d2: np.ndarray, rows: np.ndarray, presorted_runs: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Sort every row of candidates by (distance, row) — the tie rule — with one uint64 sort.

    For non-negative float32 the IEEE bit pattern orders like the value, so a uint64 whose high
    half is the distance's bits and low half the row orders exactly like (distance, row) (rows <
    2**32). `presorted_runs` (merging shards' sorted lists) picks timsort, linear on such input."""
    assert sys.byteorder == "little", "the uint64 key layout assumes a little-endian machine"
    q, c = d2.shape
    key = np.empty((q, c), dtype=np.uint64)
    halves = key.view(np.uint32).reshape(q, c, 2)  # little-endian: [..., 0] low, [..., 1] high
    halves[..., 0] = rows
    halves[..., 1] = (np.maximum(d2, 0, dtype=np.float32) + np.float32(0)).view(np.uint32)  # +0: -0.0 -> 0.0
    key.sort(axis=-1, kind="stable" if presorted_runs else None)
    return split_keys(key)


def split_keys(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d2 float32, rows int64) from (distance bits, row) uint64 keys laid out as in `sort_rows`."""
    halves = key.view(np.uint32).reshape(*key.shape, 2)  # little-endian: [..., 0] low, [..., 1] high
    return halves[..., 1].view(np.float32).copy(), halves[..., 0].astype(np.int64)


def exact_d2(queries: np.ndarray, base: np.ndarray, rows: np.ndarray, base_offset: int = 0) -> np.ndarray:
    """Squared distances of queries (q, d) to base[rows - base_offset] (q, c), by direct differences
    (no cancellation): exact for duplicates, independent of BLAS blocking."""
    q, c = rows.shape
    out = np.empty((q, c), dtype=np.float32)
    step = max(1, _GATHER_BUDGET // max(1, c * queries.shape[1]))
    for s in range(0, q, step):
        diff = base[rows[s : s + step] - base_offset] - queries[s : s + step, None, :]  # (b, c, d)
        out[s : s + step] = np.einsum("bcd,bcd->bc", diff, diff, dtype=np.float64)
    return out


class ShardIndex:
    """One database shard of one probe point: rows [offset, offset + len(base)) of the full matrix."""

    def __init__(self, base: np.ndarray, offset: int = 0, device: str = "cpu", factory: str | None = None,
                 search_params: str = ""):
        self.base = np.ascontiguousarray(base, dtype=np.float32)  # (m, d)
        self.offset = offset
        self.device = device
        self.approx = build_approximate(self.base, factory, search_params) if factory else None

    def search(self, queries: np.ndarray, need: int, kc: int, refine_ranks: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Top-kc candidates of this shard for every query: (d2 (q, kc) float32, rows (q, kc) int64),
        sorted by (d2, row). The leading ranks are re-scored exactly here, where the data lives, so
        that shards merge on exact values; `need` (≤ kc) ranks are right including boundary ties."""
        kc = min(kc, self.base.shape[0])
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if kc == 0:
            return np.empty((len(queries), 0), np.float32), np.empty((len(queries), 0), np.int64)
        d2, local = self._gemm_topk(queries, kc)
        if refine_ranks > 0:
            r = min(kc, refine_ranks + 1 + max(4, refine_ranks // 64))
            head, hrows = sort_rows(exact_d2(queries, self.base, local[:, :r]), local[:, :r])
            d2 = np.concatenate([head, d2[:, r:]], axis=1)
            local = np.concatenate([hrows, local[:, r:]], axis=1)
        d2, local = self._complete_ties(queries, d2, local, min(need, kc))
        return d2, local + self.offset

    def _gemm_topk(self, queries: np.ndarray, kc: int) -> tuple[np.ndarray, np.ndarray]:
        if self.approx is not None:  # approximate: missing results (-1) are padded with far points
            d2, local = self.approx.search(queries, kc)
            missing = local < 0
            local = np.where(missing, 0, local).astype(np.int64)
            d2 = np.where(missing, np.float32(np.inf), d2)
            return sort_rows(np.maximum(d2, 0), local)
        if self.device.startswith("cuda"):
            return _order_ties(*_gpu_topk(queries, self.base, kc, self.device))
        if kc > FAISS_CPU_K_LIMIT:
            return self._blocked_topk(queries, kc)  # ordered by (distance, row) already
        import faiss

        d2, local = faiss.knn(queries, self.base, kc)  # squared L2, float32
        return _order_ties(np.maximum(d2, 0), local.astype(np.int64))

    def _complete_ties(self, queries: np.ndarray, d2: np.ndarray, local: np.ndarray, need: int) -> tuple[np.ndarray, np.ndarray]:
        """If the `need`-th candidate ties (within float error) with the last one, points beyond kc
        may tie too, and FAISS picks among equals arbitrarily. Those rows — rare: duplicates — are
        recomputed exactly against the whole shard so the (distance, row) rule holds."""
        m, kc = self.base.shape[0], d2.shape[1]
        if kc < m and self.approx is None:
            tol = 1e-5 * (np.einsum("qd,qd->q", queries, queries) + self.max_sq_norm) + 1e-30
            suspect = np.flatnonzero(d2[:, -1] - d2[:, need - 1] <= tol)
            if len(suspect):
                every = np.broadcast_to(np.arange(m, dtype=np.int64), (len(suspect), m))
                full = exact_d2(queries[suspect], self.base, every)
                fd, fr = sort_rows(full, np.array(every))
                d2[suspect], local[suspect] = fd[:, :kc], fr[:, :kc]
        return d2, local

    def _blocked_topk(self, queries: np.ndarray, kc: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-kc for large k: distance blocks by one GEMM each, selection on (distance, row) keys.

        Base rows carry ‖b‖² as an extra column and queries a matching 1 (times −2q), so one sgemm
        yields ‖b‖² − 2q·b; adding ‖q‖² gives the squared distance. Each distance becomes a uint64
        whose high half is its float32 bits and low half its row (`sort_rows`: it orders exactly like
        (distance, row), the tie rule), so one `np.partition` (AVX-512 select) keeps the kc smallest
        and one sort of those orders them with ties already by row. 1000 queries × 60,000 points of
        LeNet-5's output at k = 12,000, one thread, GEMM included: 1.31 s against 2.39 s for
        torch.topk plus a re-sort of every row holding equal distances (most rows of a narrow layer at
        this k), 2.12 s for np.argpartition (`python -m nnts_ray.benchmarks.selection`)."""
        assert sys.byteorder == "little", "the uint64 key layout assumes a little-endian machine"
        if not hasattr(self, "_aug"):
            self._aug = np.hstack([self.base, np.einsum("md,md->m", self.base, self.base)[:, None]])  # (m, d+1)
        qa = np.hstack([-2.0 * queries, np.ones((len(queries), 1), np.float32)])  # (q, d+1)
        qn = np.einsum("qd,qd->q", queries, queries)[:, None]  # (q, 1)
        m, q = self.base.shape[0], len(queries)
        step = max(kc, _BLOCK_BUDGET // max(1, q))
        best = np.empty((q, kc), np.uint64)  # kept keys, unsorted until the last block
        kept = 0  # valid columns of best
        for lo in range(0, m, step):
            block = qa @ self._aug[lo : lo + step].T  # (q, b) float32
            block += qn
            np.maximum(block, 0, out=block)
            block += np.float32(0)  # -0.0 -> +0.0: the sign bit would sort it last
            cols = np.arange(lo, lo + block.shape[1], dtype=np.uint64)
            for s in range(0, q, _KEY_ROWS):  # rows a few at a time: keys of a chunk stay in cache
                keys = np.empty((min(_KEY_ROWS, q - s), kept + block.shape[1]), np.uint64)
                keys[:, :kept] = best[s : s + _KEY_ROWS, :kept]
                np.left_shift(block[s : s + _KEY_ROWS].view(np.uint32), np.uint64(32), out=keys[:, kept:], dtype=np.uint64)
                keys[:, kept:] |= cols
                if keys.shape[1] > kc:
                    keys = np.partition(keys, kc - 1, axis=1)[:, :kc]
                best[s : s + _KEY_ROWS, : keys.shape[1]] = keys
            kept = min(kc, kept + block.shape[1])
        best = np.ascontiguousarray(best[:, :kept])
        best.sort(axis=1)
        return split_keys(best)

    @property
    def max_sq_norm(self) -> float:
        if not hasattr(self, "_max_sq_norm"):
            self._max_sq_norm = float(np.max(np.einsum("md,md->m", self.base, self.base))) if len(self.base) else 0.0
        return self._max_sq_norm


def build_approximate(base: np.ndarray, factory: str, search_params: str, train_max: int = 100_000):
    """A FAISS index from an index_factory string (e.g. "IVF256,Flat", "HNSW32"), trained on a seeded
    sample of at most `train_max` rows; `search_params` like "nprobe=16" or "efSearch=128"."""
    import faiss

    try:
        index = faiss.index_factory(base.shape[1], factory)
    except RuntimeError as e:
        raise ValueError(f"knn.index={factory!r} is not a FAISS index_factory string ({e})") from e
    if not index.is_trained:
        rng = np.random.default_rng(0)
        sample = base if len(base) <= train_max else base[np.sort(rng.choice(len(base), train_max, replace=False))]
        index.train(sample)
    index.add(base)
    if search_params:
        faiss.ParameterSpace().set_index_parameters(index, search_params)
    return index


def _gpu_topk(queries: np.ndarray, base: np.ndarray, kc: int, device: str) -> tuple[np.ndarray, np.ndarray]:
    """GPU path: faiss-gpu brute force where k fits its cap, torch GEMM + topk beyond (float32, TF32 off)."""
    import torch

    if kc <= GPU_FAISS_K_LIMIT:
        import faiss

        if hasattr(faiss, "knn_gpu"):
            res = faiss.StandardGpuResources()
            d2, local = faiss.knn_gpu(res, queries, base, kc, device=int(device.split(":")[-1] or 0) if ":" in device else 0)
            return np.maximum(d2, 0), local.astype(np.int64)
    torch.backends.cuda.matmul.allow_tf32 = False
    with torch.inference_mode():
        q = torch.from_numpy(queries).to(device)
        b = torch.from_numpy(base).to(device)
        d2 = (q * q).sum(1, keepdim=True) + (b * b).sum(1)[None, :] - 2.0 * (q @ b.T)
        vals, idx = torch.topk(d2, kc, dim=1, largest=False, sorted=True)
        return vals.clamp_min_(0).cpu().numpy(), idx.cpu().numpy().astype(np.int64)


def _order_ties(d2: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FAISS and torch.topk promise no order among equal distances; re-sort the rows that hold any
    by (distance, row), so every path gives the order of the CPU key selection."""
    tied = np.flatnonzero((d2[:, 1:] == d2[:, :-1]).any(axis=1))
    if len(tied):
        d2[tied], rows[tied] = sort_rows(d2[tied], rows[tied])
    return d2, rows


def merge_candidates(parts: list[tuple[np.ndarray, np.ndarray]], kc: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-shard candidates (global rows) into the global top-kc by (distance, row)."""
    d2 = np.concatenate([p[0] for p in parts], axis=1)
    rows = np.concatenate([p[1] for p in parts], axis=1)
    d2, rows = sort_rows(d2, rows, presorted_runs=True)
    return d2[:, :kc], rows[:, :kc]


def finalize(query_rows: np.ndarray, d2: np.ndarray, rows: np.ndarray, k: int, metric: str) -> Neighbours:
    """Self excluded by index (never "drop the first column"), k kept, distances converted."""
    is_self = rows == query_rows[:, None]
    if is_self[:, : k + 1].sum() == len(rows):  # self within the first k+1 of every row: drop it
        keep = ~is_self[:, : k + 1]
        rows, d2 = rows[:, : k + 1][keep].reshape(-1, k), d2[:, : k + 1][keep].reshape(-1, k)
    else:  # self further back or absent (many duplicates): keep order, move self last, cut at k
        order = np.argsort(is_self, axis=1, kind="stable")[:, :k]
        rows = np.take_along_axis(rows, order, axis=1)
        d2 = np.take_along_axis(d2, order, axis=1)
    assert rows.shape[1] == k, (rows.shape, k)
    dist = np.sqrt(np.maximum(d2, 0)) if metric == "l2" else np.maximum(d2, 0) / 2.0  # cosine: 1 - cos
    return Neighbours(rows=rows.astype(np.int64), distance=dist.astype(np.float32))


def knn_rows(
    x: np.ndarray,
    k: int,
    metric: str = "l2",
    query_block: int = 4096,
    refine_ranks: int = 128,
    shards: int = 1,
    device: str = "cpu",
) -> Neighbours:
    """k nearest neighbours of every row of x among all rows (single process; the reference path)."""
    n = x.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k={k} is not allowed for n={n} samples; k must be between 1 and n-1")
    xp = prepare(x, metric)
    bounds = np.linspace(0, n, shards + 1).astype(int)
    indexes = [ShardIndex(xp[lo:hi], lo, device) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]
    kc = candidates_needed(k, n)
    out_rows, out_dist = [], []
    for s in range(0, n, query_block):
        q = xp[s : s + query_block]
        qrows = np.arange(s, s + len(q), dtype=np.int64)
        d2, rows = merge_candidates([ix.search(q, k + 1, kc, refine_ranks) for ix in indexes], kc)
        nb = finalize(qrows, d2, rows, k, metric)
        out_rows.append(nb.rows)
        out_dist.append(nb.distance)
    return Neighbours(rows=np.concatenate(out_rows), distance=np.concatenate(out_dist))
