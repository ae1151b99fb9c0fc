"""Exact k-nearest-neighbour search with the conventions of RUN_DIRECTORY.md.

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


def backend(device: str, kc: int) -> str:
    """The top-kc path for a device: on CPU FAISS's heaps for small k, GEMM + key selection beyond;
    on CUDA faiss-gpu where it is installed and k fits its cap, else torch GEMM + top-k."""
    if device.startswith("cuda"):
        import faiss

        return "faiss_gpu" if kc <= GPU_FAISS_K_LIMIT and hasattr(faiss, "knn_gpu") else "torch"
    return "faiss" if kc <= FAISS_CPU_K_LIMIT else "blocked"


class ShardIndex:
    """One database shard of one probe point: rows [offset, offset + len(base)) of the full matrix.

    `device` is where the GEMM runs ("cpu", "cuda", "cuda:1"); `force_backend` overrides the choice of
    `backend()` — tests run the GPU's torch path on CPU tensors this way, against the CPU path."""

    def __init__(self, base: np.ndarray, offset: int = 0, device: str = "cpu", factory: str | None = None,
                 search_params: str = "", force_backend: str | None = None):
        self.base = np.ascontiguousarray(base, dtype=np.float32)  # (m, d)
        self.offset = offset
        self.device = device
        self.force_backend = force_backend
        self.approx = build_approximate(self.base, factory, search_params) if factory else None

    def search(self, queries: np.ndarray, need: int, kc: int, refine_ranks: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Top-kc candidates of this shard for every query: (d2 (q, kc) float32, rows (q, kc) int64),
        sorted by (d2, row). The leading ranks are re-scored exactly here, where the data lives, so
        that shards merge on exact values; `need` (≤ kc) ranks are right including boundary ties."""
        kc = min(kc, self.base.shape[0])
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if kc == 0:
            return np.empty((len(queries), 0), np.float32), np.empty((len(queries), 0), np.int64)
        return self._finish(queries, *self._gemm_topk(queries, kc), need, refine_ranks)

    def _finish(self, queries: np.ndarray, d2: np.ndarray, local: np.ndarray, need: int, refine_ranks: int
                ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates as `search` returns them: leading ranks re-scored exactly, boundary ties completed."""
        kc = d2.shape[1]
        if refine_ranks > 0:
            r = min(kc, refine_ranks + 1 + max(4, refine_ranks // 64))
            head, hrows = sort_rows(exact_d2(queries, self.base, local[:, :r]), local[:, :r])
            d2 = np.concatenate([head, d2[:, r:]], axis=1)
            local = np.concatenate([hrows, local[:, r:]], axis=1)
        d2, local = self._complete_ties(queries, d2, local, min(need, kc))
        return d2, local + self.offset

    def search_with_sets(self, queries: np.ndarray, query_rows: np.ndarray, need: int, kc: int, refine_ranks: int,
                         set_ks: list[int]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """`search`, and from the same distances each query's k nearest other samples for every k of
        `set_ks`, as membership bit sets: (d2, rows, [(q, words) uint64 per k]) — bit j of a query's
        set is database row j. Exact search on a whole database (offset 0) only.

        The sets follow the tie rule without ordering anything: one partition per query finds the k-th
        smallest distance t (self excluded by index); rows clearly below t are members, and the rows
        within float error of t are decided on exact distances, ties by row (`_member_sets`)."""
        assert self.offset == 0 and self.approx is None, "sets need the whole database, searched exactly"
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        on_torch = (self.force_backend or backend(self.device, kc)) in ("torch", "faiss_gpu")
        if on_torch:  # the GPU's path (CI runs it on CPU tensors): distances and order statistics in torch
            g = torch_distances(queries, self.base, self.device)  # (q, m) torch float32
            d2, local = _order_ties(*_torch_smallest(g, kc))
        else:
            qa, qn = self._gemm_operands(queries)
            g = self._gemm_block(qa, qn, 0, len(self.base))  # (q, m) float32: the values _blocked_topk selects from
            best = np.empty((len(queries), kc), np.uint64)
            kept = self._select_keys(best, 0, g, 0, kc)
            best = np.ascontiguousarray(best[:, :kept])
            best.sort(axis=1)
            d2, local = split_keys(best)
        d2, local = self._finish(queries, d2, local, need, refine_ranks)
        g[_index(g, np.arange(len(queries))), _index(g, query_rows)] = np.inf  # self is never its own neighbour
        return d2, local, self._member_sets(queries, g, set_ks)

    def _member_sets(self, queries: np.ndarray, g, set_ks: list[int]) -> list[np.ndarray]:
        """Bit sets from distances `g` (q, m), a numpy array or a torch tensor (kept on its device).

        The fast distances carry float error well below `tol`, so with t the k-th smallest of a row:
        rows below t − tol are members and rows above t + tol are not, whatever the error; the rows in
        between (the band: t itself, its exact ties, near-ties) fill the remaining places by exact
        distance (float64, rounded to float32 like a ranked search's re-scored head), ties by row.
        Only the band is re-scored, so the cost is a few rows a query, not a full exact row."""
        m, q = g.shape[1], len(queries)
        stats = _order_stats(g, sorted({k - 1 for k in set_ks}))
        tol = 1e-5 * (np.einsum("qd,qd->q", queries, queries) + self.max_sq_norm) + 1e-30
        words = -(-m // 64)
        out = []
        for k in set_ks:
            t = stats[k - 1]  # (q,) the k-th smallest distance to another row
            below = (t - tol).astype(np.float32)
            above = (t + tol).astype(np.float32)
            member = _numpy(g <= _column(g, below)).copy()  # (q, m) bool: members whatever the error
            band = _numpy((g > _column(g, below)) & (g <= _column(g, above)))
            need = k - member.sum(axis=1)  # places left for the band (the band holds at least that many)
            fits = band.sum(axis=1) == need
            member[fits] |= band[fits]
            for i in np.flatnonzero(~fits):  # more candidates than places: exact distances decide
                cand = np.flatnonzero(band[i])
                exact = exact_d2(queries[i : i + 1], self.base, cand[None, :])[0]
                member[i, cand[np.lexsort((cand, exact))[: need[i]]]] = True
            bits = np.zeros((q, words * 8), np.uint8)
            bits[:, : -(-m // 8)] = np.packbits(member, axis=1)
            out.append(bits.view(np.uint64))
        return out

    def _exact_row(self, query: np.ndarray) -> np.ndarray:
        """Squared distances of one query to every row, by direct differences in float64 (rows read in
        chunks, so a wide database never makes an (m, d) temporary)."""
        m = self.base.shape[0]
        out = np.empty(m, np.float64)
        step = max(1, _GATHER_BUDGET // max(1, self.base.shape[1]))
        for lo in range(0, m, step):
            diff = self.base[lo : lo + step] - query  # (b, d) float32
            out[lo : lo + step] = np.einsum("bd,bd->b", diff, diff, dtype=np.float64)
        return out

    def _gemm_topk(self, queries: np.ndarray, kc: int) -> tuple[np.ndarray, np.ndarray]:
        if self.approx is not None:  # approximate: missing results (-1) are padded with far points
            d2, local = self.approx.search(queries, kc)
            missing = local < 0
            local = np.where(missing, 0, local).astype(np.int64)
            d2 = np.where(missing, np.float32(np.inf), d2)
            return sort_rows(np.maximum(d2, 0), local)
        path = self.force_backend or backend(self.device, kc)
        if path == "blocked":
            return self._blocked_topk(queries, kc)  # ordered by (distance, row) already
        if path == "torch":
            return _order_ties(*torch_topk(queries, self.base, kc, self.device))
        import faiss

        if path == "faiss_gpu":
            res = faiss.StandardGpuResources()
            d2, local = faiss.knn_gpu(res, queries, self.base, kc, device=_cuda_index(self.device))
        else:
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
                full = np.stack([self._exact_row(queries[i]) for i in suspect]).astype(np.float32)
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
        qa, qn = self._gemm_operands(queries)
        m, q = self.base.shape[0], len(queries)
        step = max(kc, _BLOCK_BUDGET // max(1, q))
        best = np.empty((q, kc), np.uint64)  # kept keys, unsorted until the last block
        kept = 0  # valid columns of best
        for lo in range(0, m, step):
            kept = self._select_keys(best, kept, self._gemm_block(qa, qn, lo, min(m, lo + step)), lo, kc)
        best = np.ascontiguousarray(best[:, :kept])
        best.sort(axis=1)
        return split_keys(best)

    def _gemm_operands(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(queries augmented with a 1 column (q, d+1), ‖q‖² (q, 1)); builds the base's (m, d+1) once."""
        assert sys.byteorder == "little", "the uint64 key layout assumes a little-endian machine"
        if not hasattr(self, "_aug"):
            self._aug = np.hstack([self.base, np.einsum("md,md->m", self.base, self.base)[:, None]])  # (m, d+1)
        qa = np.hstack([-2.0 * queries, np.ones((len(queries), 1), np.float32)])  # (q, d+1)
        return qa, np.einsum("qd,qd->q", queries, queries)[:, None]

    def _gemm_block(self, qa: np.ndarray, qn: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Squared distances (q, hi - lo) float32 to base rows [lo, hi) by one sgemm, clamped at +0."""
        block = qa @ self._aug[lo:hi].T  # (q, b) float32 = ‖b‖² − 2 q·b
        block += qn
        np.maximum(block, 0, out=block)
        block += np.float32(0)  # -0.0 -> +0.0: the sign bit would sort it last
        return block

    @staticmethod
    def _select_keys(best: np.ndarray, kept: int, block: np.ndarray, lo: int, kc: int) -> int:
        """Merge a distance block (columns = rows lo…) into `best`, the kept kc smallest (distance, row)
        keys of every query; returns how many columns of `best` are now valid."""
        cols = np.arange(lo, lo + block.shape[1], dtype=np.uint64)
        q = len(block)
        for s in range(0, q, _KEY_ROWS):  # rows a few at a time: keys of a chunk stay in cache
            keys = np.empty((min(_KEY_ROWS, q - s), kept + block.shape[1]), np.uint64)
            keys[:, :kept] = best[s : s + _KEY_ROWS, :kept]
            np.left_shift(block[s : s + _KEY_ROWS].view(np.uint32), np.uint64(32), out=keys[:, kept:], dtype=np.uint64)
            keys[:, kept:] |= cols
            if keys.shape[1] > kc:
                keys = np.partition(keys, kc - 1, axis=1)[:, :kc]
            best[s : s + _KEY_ROWS, : keys.shape[1]] = keys
        return min(kc, kept + block.shape[1])

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


def _cuda_index(device: str) -> int:
    return int(device.split(":")[1]) if ":" in device else 0


def torch_distances(queries: np.ndarray, base: np.ndarray, device: str):
    """Squared distances (q, m) as a torch float32 tensor on `device` (TF32 off), clamped at 0."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    with torch.no_grad():  # not inference_mode: the caller masks self in place
        q = torch.from_numpy(np.ascontiguousarray(queries)).to(device)
        b = torch.from_numpy(np.ascontiguousarray(base)).to(device)
        return ((q * q).sum(1, keepdim=True) + (b * b).sum(1)[None, :] - 2.0 * (q @ b.T)).clamp_min_(0)


def _torch_smallest(d2, kc: int) -> tuple[np.ndarray, np.ndarray]:
    import torch

    with torch.inference_mode():
        vals, idx = torch.topk(d2, kc, dim=1, largest=False, sorted=True)
        return vals.cpu().numpy(), idx.cpu().numpy().astype(np.int64)


def torch_topk(queries: np.ndarray, base: np.ndarray, kc: int, device: str) -> tuple[np.ndarray, np.ndarray]:
    """GEMM + top-k in torch on `device` (the GPU path beyond faiss-gpu's k cap; runs on CPU tensors
    too, which is how CI checks it): float32 with TF32 off, squared distances clamped at 0."""
    return _torch_smallest(torch_distances(queries, base, device), kc)


def _numpy(x) -> np.ndarray:
    """A numpy view of a numpy array or a (CPU or GPU) torch tensor."""
    return x if isinstance(x, np.ndarray) else x.cpu().numpy()


def _index(g, rows: np.ndarray):
    """Integer indices for g: the numpy array itself, or a torch tensor on g's device."""
    if isinstance(g, np.ndarray):
        return rows
    import torch

    return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.int64)).to(g.device)


def _column(g, values: np.ndarray):
    """`values` (q,) as a (q, 1) column of g's kind (numpy, or a torch tensor on g's device)."""
    if isinstance(g, np.ndarray):
        return values[:, None]
    import torch

    return torch.from_numpy(values).to(g.device)[:, None]


def _order_stats(g, positions: list[int]) -> dict[int, np.ndarray]:
    """{p: the (p+1)-th smallest value of every row of g} (0-based positions): one partition of a
    numpy copy, or torch.kthvalue per position on g's device."""
    if isinstance(g, np.ndarray):
        part = np.partition(g, positions, axis=1)  # (q, m) copy
        return {p: part[:, p].copy() for p in positions}
    import torch

    with torch.inference_mode():
        return {p: torch.kthvalue(g, p + 1, dim=1).values.cpu().numpy() for p in positions}


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


def shard_candidates(index: ShardIndex, queries: np.ndarray, k: int, n: int, refine_ranks: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """One shard's candidates for k neighbours among n samples (self included: k + 1 must be right)."""
    return index.search(queries, k + 1, candidates_needed(k, n), refine_ranks)


def neighbours_of(parts: list[tuple[np.ndarray, np.ndarray]], query_rows: np.ndarray, k: int, n: int,
                  metric: str) -> Neighbours:
    """The k neighbours of each query from every shard's candidates: merged, self removed by index."""
    d2, rows = parts[0] if len(parts) == 1 else merge_candidates(parts, candidates_needed(k, n))
    return finalize(query_rows, d2, rows, k, metric)


def knn_rows(
    x: np.ndarray,
    k: int,
    metric: str = "l2",
    query_block: int = 4096,
    refine_ranks: int = 128,
    shards: int = 1,
    device: str = "cpu",
    force_backend: str | None = None,
) -> Neighbours:
    """k nearest neighbours of every row of x among all rows (single process; the reference path)."""
    n = x.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k={k} is not allowed for n={n} samples; k must be between 1 and n-1")
    xp = prepare(x, metric)
    bounds = np.linspace(0, n, shards + 1).astype(int)
    indexes = [ShardIndex(xp[lo:hi], lo, device, force_backend=force_backend)
               for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]
    out_rows, out_dist = [], []
    for s in range(0, n, query_block):
        q = xp[s : s + query_block]
        qrows = np.arange(s, s + len(q), dtype=np.int64)
        nb = neighbours_of([shard_candidates(ix, q, k, n, refine_ranks) for ix in indexes], qrows, k, n, metric)
        out_rows.append(nb.rows)
        out_dist.append(nb.distance)
    return Neighbours(rows=np.concatenate(out_rows), distance=np.concatenate(out_dist))
