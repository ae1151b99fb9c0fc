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
_GATHER_BUDGET = 1 << 20  # floats gathered at once while re-scoring candidates (4 MB: stays in cache, 2x faster than 64 MB)
_BLOCK_BUDGET = 1 << 26  # distance-block elements (256 MB of float32) in the blocked exact path
_KEY_ROWS = 64  # query rows selected at once in the blocked path ((64, m) uint64 keys)
_SAMPLE_COLS = 4096  # columns sampled to bracket a row's order statistic (`_bracket`)
_SET_ROWS = 128  # query rows turned into sets at once: their (rows, m) masks stay a few MB


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


def exact_pairs(queries: np.ndarray, base: np.ndarray, qi: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`exact_d2` for a flat list of (query qi[j], base row rows[j]) pairs: (N,) float32, the same
    arithmetic, a bounded gather at a time."""
    out = np.empty(len(rows), dtype=np.float32)
    step = max(1, _GATHER_BUDGET // max(1, queries.shape[1]))
    for s in range(0, len(rows), step):
        diff = base[rows[s : s + step]] - queries[qi[s : s + step]]  # (b, d)
        out[s : s + step] = np.einsum("cd,cd->c", diff, diff, dtype=np.float64)
    return out


def row_keys(rr: np.ndarray, cc: np.ndarray, values: np.ndarray, r: int, kc: int) -> tuple[np.ndarray, np.ndarray]:
    """For entries (row rr, column cc, value ≥ 0) listed row by row, each row's kc smallest by
    (value, column) — the tie rule — sorted: (values (r, kc) float32, columns (r, kc) int64). Every
    row must have at least kc entries."""
    keys, _ = _by_row(rr, (np.asarray(values, np.float32).view(np.uint32).astype(np.uint64) << np.uint64(32))
                      | cc.astype(np.uint64), r, np.iinfo(np.uint64).max, kc)
    if keys.shape[1] > kc:
        keys = np.partition(keys, kc - 1, axis=1)[:, :kc]
    keys.sort(axis=1)
    return split_keys(keys)


def _by_row(rr: np.ndarray, values: np.ndarray, r: int, fill, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Entries listed row by row (rows rr ascending) laid out as an (r, max(width, longest row)) array
    padded with `fill`, and each row's count."""
    counts = np.bincount(rr, minlength=r)
    out = np.full((r, counts.max(initial=width)), fill, values.dtype)
    out[rr, np.arange(len(rr)) - np.repeat(np.cumsum(counts) - counts, counts)] = values
    return out, counts


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

    def _finish(self, queries: np.ndarray, d2: np.ndarray, local: np.ndarray, need: int, refine_ranks: int,
                g=None) -> tuple[np.ndarray, np.ndarray]:
        """Candidates as `search` returns them: leading ranks re-scored exactly, boundary ties completed."""
        kc = d2.shape[1]
        if refine_ranks > 0:
            r = min(kc, refine_ranks + 1 + max(4, refine_ranks // 64))
            head, hrows = sort_rows(exact_d2(queries, self.base, local[:, :r]), local[:, :r])
            d2 = np.concatenate([head, d2[:, r:]], axis=1)
            local = np.concatenate([hrows, local[:, r:]], axis=1)
        d2, local = self._complete_ties(queries, d2, local, min(need, kc), g)
        return d2, local + self.offset

    def search_with_sets(self, queries: np.ndarray, query_rows: np.ndarray, need: int, kc: int, refine_ranks: int,
                         set_ks: list[int]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """`search`, and from the same distances each query's k nearest other samples for every k of
        `set_ks`, as membership bit sets: (d2, rows, [(q, words) uint64 per k]) — bit j of a query's
        set is database row j. Exact search on a whole database (offset 0) only.

        The sets follow the tie rule without ordering anything: each query's k-th smallest distance t
        (self excluded by index) is found inside a bracket taken from a column sample (`_members`; on
        torch, one kthvalue); rows clearly below t are members, and the rows within float error of t
        are decided on exact distances, ties by row (`_member_sets`)."""
        assert self.offset == 0 and self.approx is None, "sets need the whole database, searched exactly"
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        on_torch = (self.force_backend or backend(self.device, kc)) in ("torch", "faiss_gpu")
        if on_torch:  # the GPU's path (CI runs it on CPU tensors): distances and order statistics in torch
            g = torch_distances(queries, self.base, self.device)  # (q, m) torch float32
            d2, local = _order_ties(*_torch_smallest(g, kc))
        else:
            qa, qn = self._gemm_operands(queries)
            g = self._gemm_block(qa, qn, 0, len(self.base), self._buffer(len(queries)))  # (q, m): as _blocked_topk's
            d2, local = self._smallest_keys(g, min(kc, g.shape[1]))
        d2, local = self._finish(queries, d2, local, need, refine_ranks, g)
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
        tol = self._tol(queries)
        words = -(-m // 64)
        out = [np.zeros((q, words * 8), np.uint8) for _ in set_ks]
        if isinstance(g, np.ndarray):  # rows a few at a time; t found without ordering the whole row
            for s in range(0, q, _SET_ROWS):
                rows = slice(s, s + _SET_ROWS)
                brackets = self._bracket(g[rows], set_ks, tol[rows])
                for k, bits in zip(set_ks, out):
                    member = self._members(queries[rows], g[rows], k, tol[rows], brackets[k])
                    bits[rows, : -(-m // 8)] = np.packbits(member, axis=1)
            return [bits.view(np.uint64) for bits in out]
        stats = _order_stats(g, sorted({k - 1 for k in set_ks}))
        for k, bits in zip(set_ks, out):
            t = stats[k - 1]  # (q,) the k-th smallest distance to another row
            below = (t - tol).astype(np.float32)
            above = (t + tol).astype(np.float32)
            member = _numpy(g <= _column(g, below)).copy()  # (q, m) bool: members whatever the error
            rr, cc = np.nonzero(_numpy((g > _column(g, below)) & (g <= _column(g, above))))
            self._fill_band(queries, member, rr, cc, k - member.sum(axis=1))
            bits[:, : -(-m // 8)] = np.packbits(member, axis=1)
        return [bits.view(np.uint64) for bits in out]

    def _members(self, queries: np.ndarray, g: np.ndarray, k: int, tol: np.ndarray, bracket: tuple) -> np.ndarray:
        """(r, m) bool: the rule of `_member_sets` for a few rows of numpy distances, without a
        partition of whole rows: a bracket [L, H] from a column sample (`_bracket`, widened by tol)
        leaves rows ≤ L as members and only the few in (L, H] to look at. The k-th smallest t is
        found among those; the bracket holds when t − tol ≥ L and t + tol ≤ H (every member-for-sure
        and band row then lies in (L, H] or below L). Rows where it does not are done again with the
        bracket (−inf, +inf), which is the rule on the whole row."""
        r, m = g.shape
        lo, hi = bracket
        member = g <= lo[:, None]
        below = np.count_nonzero(member, axis=1)
        mid = g <= hi[:, None]
        mid ^= member  # lo ≤ hi, so (lo, hi] = (≤ hi) minus (≤ lo)
        rr, cc = _nonzero(mid)
        vals = g[rr, cc]
        ordered, counts = _by_row(rr, vals, r, np.inf, 1)  # each row's values in (L, H], sorted
        ordered.sort(axis=1)
        j = k - 1 - below  # t's place among its row's values in (L, H]
        found = (j >= 0) & (j < counts)
        t = np.where(found, ordered[np.arange(r), np.clip(j, 0, ordered.shape[1] - 1)], np.float32(np.nan))
        sure_max = (t - tol).astype(np.float32)
        band_max = (t + tol).astype(np.float32)
        with np.errstate(invalid="ignore"):
            ok = (lo <= sure_max) & (band_max <= hi)  # False where t is NaN (not found in (L, H])
        keep = ok[rr]
        rr, cc, vals = rr[keep], cc[keep], vals[keep]
        sure = vals <= sure_max[rr]
        member[rr[sure], cc[sure]] = True
        band = ~sure & (vals <= band_max[rr])
        self._fill_band(queries, member, rr[band], cc[band], k - below - np.bincount(rr[sure], minlength=r))
        redo = np.flatnonzero(~ok)
        if len(redo):
            every = np.full(len(redo), np.inf, np.float32)
            member[redo] = self._members(queries[redo], g[redo], k, tol[redo], (-every, every))
        return member

    def _fill_band(self, queries: np.ndarray, member: np.ndarray, rr: np.ndarray, cc: np.ndarray, need: np.ndarray
                   ) -> None:
        """Set the `need[i]` places left in row i from its band entries (rr, cc) (row-major): all of
        them when they fit, else the nearest by exact distance, ties by column (the tie rule)."""
        if len(rr) == 0:
            return
        size = np.bincount(rr, minlength=len(member))
        fits = size[rr] == need[rr]
        member[rr[fits], cc[fits]] = True
        rr, cc = rr[~fits], cc[~fits]
        if len(rr):  # more candidates than places: exact distances decide
            exact = exact_pairs(queries, self.base, rr, cc)
            order = np.lexsort((cc, exact, rr))
            rr, cc = rr[order], cc[order]
            place = np.arange(len(rr)) - np.searchsorted(rr, rr)  # rank within the row
            pick = place < need[rr]
            member[rr[pick], cc[pick]] = True

    def _bracket(self, g: np.ndarray, ks: list[int], tol: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """{k: (L, H)} float32 per row, likely around the row's k-th smallest value: the order
        statistics of a fixed column sample 5 standard deviations (+2) either side of where the k-th
        lands in it, widened by tol; −inf/+inf where that runs off the sample. A hint: callers verify."""
        r, m = g.shape
        if getattr(self, "_sample", (None,))[0] != m:
            self._sample = (m, np.sort(np.random.default_rng(0).choice(m, min(m, _SAMPLE_COLS), replace=False)))
        s = len(self._sample[1])
        places = {}
        for k in ks:
            p = k / m
            spread = 5 * np.sqrt(s * p * (1 - p)) + 2
            places[k] = int(np.floor(p * s - 1 - spread)), int(np.ceil(p * s - 1 + spread))
        inside = sorted({i for pair in places.values() for i in pair if 0 <= i < s})
        part = np.partition(g[:, self._sample[1]], inside, axis=1) if inside else None
        low, high = np.full(r, -np.inf, np.float32), np.full(r, np.inf, np.float32)
        return {k: ((part[:, lo] - tol).astype(np.float32) if lo >= 0 else low,
                    (part[:, hi] + tol).astype(np.float32) if hi < s else high) for k, (lo, hi) in places.items()}

    def _smallest_keys(self, g: np.ndarray, kc: int) -> tuple[np.ndarray, np.ndarray]:
        """The kc smallest (distance, row) keys of every row of g, sorted — what `_select_keys`
        keeps — from the rows at or below a sampled bound H (all rows where fewer than kc are)."""
        r = len(g)
        out_d, out_r = np.empty((r, kc), np.float32), np.empty((r, kc), np.int64)
        zero = np.zeros(min(r, _SET_ROWS), np.float32)
        for s in range(0, r, _SET_ROWS):
            block = g[s : s + _SET_ROWS]
            near = block <= self._bracket(block, [kc], zero[: len(block)])[kc][1][:, None]
            near[np.count_nonzero(near, axis=1) < kc] = True  # the bound did not hold: the whole row
            rr, cc = _nonzero(near)
            out_d[s : s + _SET_ROWS], out_r[s : s + _SET_ROWS] = row_keys(rr, cc, block[rr, cc], len(block), kc)
        return out_d, out_r

    def _tol(self, queries: np.ndarray) -> np.ndarray:
        """Per query: a bound on the float error of the fast (GEMM) squared distances to any row."""
        return 1e-5 * (np.einsum("qd,qd->q", queries, queries) + self.max_sq_norm) + 1e-30

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

    def _complete_ties(self, queries: np.ndarray, d2: np.ndarray, local: np.ndarray, need: int, g=None
                       ) -> tuple[np.ndarray, np.ndarray]:
        """If the `need`-th candidate ties (within float error) with the last one, points beyond kc
        may tie too, and FAISS picks among equals arbitrarily. Those rows — duplicates, or a narrow
        layer far from the origin — get their kc nearest again by exact distance: every row whose
        fast distance (`g`, the search's own, or a fresh GEMM) is within twice the error of the last
        candidate's holds the kc nearest, and only those are re-scored, so the (distance, row) rule
        holds at the cost of a few hundred exact distances a row."""
        m, kc = self.base.shape[0], d2.shape[1]
        if kc < m and self.approx is None:
            tol = self._tol(queries)
            suspect = np.flatnonzero(d2[:, -1] - d2[:, need - 1] <= tol)
            for s in range(0, len(suspect), _SET_ROWS):
                i = suspect[s : s + _SET_ROWS]
                fast = self._fast_d2(queries[i]) if g is None else _numpy(g[_index(g, i)])
                near = fast <= (d2[i, -1] + 2 * tol[i])[:, None]
                near[np.count_nonzero(near, axis=1) < kc] = True  # the error bound failed: every row
                rr, cc = _nonzero(near)
                d2[i], local[i] = row_keys(rr, cc, exact_pairs(queries[i], self.base, rr, cc), len(i), kc)
        return d2, local

    def _fast_d2(self, queries: np.ndarray) -> np.ndarray:
        """GEMM squared distances (q, m) of a few queries to every row, without the (m, d+1) copy of
        the base that `_gemm_operands` keeps (FAISS's path never builds it)."""
        d2 = queries @ self.base.T
        d2 *= -2
        d2 += self.sq_norms
        d2 += np.einsum("qd,qd->q", queries, queries)[:, None]
        return np.maximum(d2, 0, out=d2)

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
            self._aug = np.hstack([self.base, self.sq_norms[:, None]])  # (m, d+1)
        qa = np.hstack([-2.0 * queries, np.ones((len(queries), 1), np.float32)])  # (q, d+1)
        return qa, np.einsum("qd,qd->q", queries, queries)[:, None]

    def _buffer(self, q: int) -> np.ndarray:
        """A (q, m) float32 array kept between calls: a fresh one of this size (240 MB at the paper's
        scale) costs more in page faults than the GEMM of a narrow probe point writing it."""
        m = self.base.shape[0]
        if getattr(self, "_out", np.empty((0, 0))).shape[0] < q:
            self._out = np.empty((q, m), np.float32)
        return self._out[:q]

    def _gemm_block(self, qa: np.ndarray, qn: np.ndarray, lo: int, hi: int, out: np.ndarray | None = None) -> np.ndarray:
        """Squared distances (q, hi - lo) float32 to base rows [lo, hi) by one sgemm, clamped at +0."""
        block = np.matmul(qa, self._aug[lo:hi].T, out=out)  # (q, b) float32 = ‖b‖² − 2 q·b
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
    def sq_norms(self) -> np.ndarray:
        if not hasattr(self, "_sq_norms"):
            self._sq_norms = np.einsum("md,md->m", self.base, self.base)
        return self._sq_norms

    @property
    def max_sq_norm(self) -> float:
        return float(self.sq_norms.max()) if len(self.base) else 0.0


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


def _nonzero(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.nonzero of a 2-D mask (row-major), nearly twice as fast through the flat positions."""
    flat = np.flatnonzero(mask)
    rr = flat // mask.shape[1]
    return rr, flat - rr * mask.shape[1]


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
