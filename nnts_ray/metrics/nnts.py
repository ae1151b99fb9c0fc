"""NNTS — per-sample Jaccard of k-NN sets between probe points (RUN_DIRECTORY.md), with Polars.

Input is one LazyFrame of neighbour rows `(sample_id, rank, neighbour_id)` per probe point, in the
order of a list of `ProbePoint`s (any mix of models: cross-model pairs come out of the same computation).
Each probe point is scanned on its own: a filter on a concatenation of scans reads every scan.
For one k and one block of samples, every (sample, neighbour) row gets a bit mask of the probes in
whose top-k it appears; the intersection of probes a and b for a sample is then the number of its
rows with both bits set. Three interchangeable ways compute it (identical counts, tested):
- "masks" (sparse k, the default): masks live in a dense (samples × n) numpy table, set and read by
  flat index, and per-probe bit counts are summed through a lookup table that spreads 8 mask bits
  into 8 byte fields of a uint64 — a few array passes over the n·k·L rows, no sort, no group-by;
- "bitset" (dense k, k·64 ≥ n): n-bit membership sets per sample, popcount of their AND;
- "group_by": the same masks from a Polars group-by (any number of probes; the independent check).
Sample blocks bound memory in all three.
"""

from __future__ import annotations

from itertools import combinations
from typing import Callable, Mapping

import numpy as np
import polars as pl

from nnts_ray.metrics.graph import ids_are_rows, jaccard, to_rows
from nnts_ray.plan import ProbePoint

MASK_BITS = 62  # probes per mask (int64, sign bit unused)
PER_SAMPLE_PAIRS = ("within", "all", "none")  # which pairs get per-sample rows


def chance_levels(k: int, n: int) -> tuple[float, float]:
    """Chance (jaccard, overlap) of two independent random k-sets out of the n-1 other samples: the
    overlap k/(n-1) is exact; the Jaccard k/(2(n-1)-k) plugs it into m/(2k-m), a slight underestimate
    of E[m/(2k-m)] (the permutation null in nnts_ray.analysis gives the exact level)."""
    return k / (2 * (n - 1) - k), k / (n - 1)


def _probe_groups(n_probes: int) -> list[list[int]]:
    half = MASK_BITS // 2
    return [list(range(s, min(s + half, n_probes))) for s in range(0, n_probes, half)]


def _pair_batches(n_probes: int) -> list[tuple[list[int], list[tuple[int, int]]]]:
    """(probes in one mask, pairs a<b answered with it); a single batch when probes fit one mask."""
    if n_probes <= MASK_BITS:
        return [(list(range(n_probes)), list(combinations(range(n_probes), 2)))]
    groups = _probe_groups(n_probes)
    out = []
    for gi, ga in enumerate(groups):
        for gb in groups[gi:]:
            members = sorted(set(ga) | set(gb))
            pairs = [(a, b) for a in ga for b in gb if a < b]
            out.append((members, pairs))
    return out


def pair_index(n_probes: int) -> tuple[np.ndarray, np.ndarray]:
    """(probe_a, probe_b) int64 arrays of every pair a < b in itertools.combinations order: the row
    order of every count array here."""
    pairs = np.array(list(combinations(range(n_probes), 2)), dtype=np.int64).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def use_bitsets(k: int, n: int) -> bool:
    """Dense neighbourhoods (k a sizeable fraction of n, e.g. the paper's k = n/5) are cheaper as
    bit sets of n bits per sample and probe than as rows to group."""
    return k * 64 >= n


def intersection_counts(
    frames: list[pl.LazyFrame], sample_ids: np.ndarray, k: int, sample_block: int,
    bitset_bytes: int = 1 << 28, method: str = "auto",
) -> np.ndarray:
    """(pairs, n) int64: row i holds |K_a ∩ K_b| of every sample (in `sample_ids` order) for the i-th
    pair a < b in itertools.combinations order.

    Samples are processed in blocks of `sample_block` ids (fewer when bit sets of the block would
    exceed `bitset_bytes`); every sample of `sample_ids` is counted in every pair (zero overlaps
    included: the denominator is the full sample set, never a join result). `method`: "auto",
    "masks", "bitset" or "group_by" (identical counts; auto picks bit sets for dense k, masks for
    sparse k — in batches of at most 62 probes beyond 64 —, the group-by when a table lacks rows).
    """
    n_probes, sample_ids = len(frames), np.asarray(sample_ids, dtype=np.int64)
    if method == "auto":
        method = "bitset" if use_bitsets(k, len(sample_ids)) else "masks"
    if method == "bitset":
        step = max(1, min(sample_block, 8 * bitset_bytes // max(1, n_probes * len(sample_ids))))
        return _bitset_intersections(frames, sample_ids, k, step)
    if method == "masks":
        counts = _batched_mask_intersections(frames, sample_ids, k, sample_block, min(bitset_bytes, 1 << 24))
        if counts is not None:
            return counts
    return _group_by_intersections(frames, sample_ids, k, sample_block)


def _group_by_intersections(frames: list[pl.LazyFrame], sample_ids: np.ndarray, k: int, sample_block: int
                            ) -> np.ndarray:
    """The counts from Polars group-bys of (sample, neighbour) bit masks: any number of probes, any
    number of rows per sample (the general path, and the independent check of the other two)."""
    n_probes = len(frames)
    neighbours = pl.concat([f.select("sample_id", "rank", "neighbour_id").with_columns(probe=pl.lit(i, pl.Int32))
                            for i, f in enumerate(frames)])
    out = []
    for s in range(0, len(sample_ids), sample_block):
        lo, hi = int(sample_ids[s]), int(sample_ids[min(s + sample_block, len(sample_ids)) - 1])
        block = neighbours.filter(pl.col("sample_id").is_between(lo, hi) & (pl.col("rank") < k))
        everyone = pl.DataFrame({"sample_id": sample_ids[s : s + sample_block]})
        for members, pairs in _pair_batches(n_probes):
            if not pairs:
                continue
            bit = {p: 1 << i for i, p in enumerate(members)}
            masks = (
                block.filter(pl.col("probe").is_in(members))
                .with_columns(bit=pl.col("probe").replace_strict(bit, return_dtype=pl.Int64))
                .group_by("sample_id", "neighbour_id")
                .agg(pl.col("bit").sum().alias("mask"))
            )
            m = pl.col("mask")
            counts = masks.group_by("sample_id").agg(
                [((m & (bit[a] | bit[b])) == (bit[a] | bit[b])).sum().alias(f"{a}_{b}") for a, b in pairs]
            )
            wide = everyone.join(counts.collect(), on="sample_id", how="left", validate="1:1").fill_null(0)
            long = wide.unpivot(index="sample_id", variable_name="pair", value_name="intersection")
            out.append(
                long.with_columns(
                    pl.col("pair").str.split_exact("_", 1).struct.rename_fields(["probe_a", "probe_b"])
                ).unnest("pair").with_columns(pl.col("probe_a", "probe_b").cast(pl.Int32), pl.col("intersection").cast(pl.Int64))
            )
    n_pairs = n_probes * (n_probes - 1) // 2
    if not out:
        return np.zeros((n_pairs, len(sample_ids)), np.int64)
    ordered = pl.concat(out).sort("probe_a", "probe_b", "sample_id")  # every sample once per pair
    return ordered["intersection"].to_numpy().reshape(n_pairs, len(sample_ids))


def _probe_rows(frame: pl.LazyFrame, sample_ids: np.ndarray, ids: np.ndarray, k: int, dense: bool
                ) -> pl.LazyFrame:
    """Query for (row of the sample within `ids`, column of the neighbour in `sample_ids`) of the
    top-k rows of the samples `ids` of one probe point; with ids 0..n-1 Polars computes both (as
    int32: half the bytes to copy out), otherwise they are looked up after collecting."""
    sid, nid = pl.col("sample_id"), pl.col("neighbour_id")
    if dense:
        sid, nid = (sid - int(ids[0])).cast(pl.Int32), nid.cast(pl.Int32)
    return frame.filter(pl.col("sample_id").is_between(int(ids[0]), int(ids[-1])) & (pl.col("rank") < k)
                        ).select(row=sid, col=nid)


def _to_rows(df: pl.DataFrame, sample_ids: np.ndarray, ids: np.ndarray, dense: bool,
             ordered: bool) -> tuple[np.ndarray, np.ndarray]:
    row, col = df["row"].to_numpy(), df["col"].to_numpy()
    if not dense:
        row, col = to_rows(row, ids), to_rows(col, sample_ids)
    if ordered and len(row) and np.any(row[1:] < row[:-1]):  # tables are written in order; sort only if not
        order = np.argsort(row, kind="stable")
        row, col = row[order], col[order]
    return row, col


def _member_cells(frame: pl.LazyFrame, sample_ids: np.ndarray, ids: np.ndarray, k: int, dense: bool,
                  width: int) -> list[np.ndarray]:
    """Flat cells row·width + column of the top-k rows of the samples `ids` of one probe point (row:
    the sample within `ids`, column: the neighbour within `sample_ids`), as zero-copy views of the
    collected chunks (copying 36M rows into one array cost more than using them)."""
    query = frame.filter(pl.col("sample_id").is_between(int(ids[0]), int(ids[-1])) & (pl.col("rank") < k))
    if dense:
        cells = query.select(cell=(pl.col("sample_id") - int(ids[0])) * width + pl.col("neighbour_id")).collect()
        return [c.to_numpy(zero_copy_only=True) for c in cells.to_arrow().column(0).chunks]
    got = query.select("sample_id", "neighbour_id").collect()
    return [to_rows(got["sample_id"].to_numpy(), ids) * width + to_rows(got["neighbour_id"].to_numpy(), sample_ids)]


def _bitset_intersections(frames: list[pl.LazyFrame], sample_ids: np.ndarray, k: int, step: int) -> np.ndarray:
    """The same counts through bit sets: per block and probe, a (block, n) boolean membership
    array packed to bits; |K_a ∩ K_b| = popcount(bits_a & bits_b), 64 bits at a time."""
    n, n_probes = len(sample_ids), len(frames)
    pairs = list(combinations(range(n_probes), 2))
    counts = np.zeros((len(pairs), n), np.int64)
    dense = ids_are_rows(sample_ids)
    width = -(-n // 64) * 64
    member = np.zeros((min(step, n), width), dtype=bool)
    for s in range(0, n, step):
        ids = sample_ids[s : s + step]
        bits = np.empty((n_probes, len(ids), width // 64), np.uint64)
        for p, frame in enumerate(frames):
            for cells in _member_cells(frame, sample_ids, ids, k, dense, width):
                member.reshape(-1).put(cells, True)
            bits[p] = np.packbits(member[: len(ids)], axis=1).view(np.uint64)
            member.fill(False)  # a memset of the block: cheaper than un-setting 36M scattered cells
        for i, (a, b) in enumerate(pairs):
            counts[i, s : s + len(ids)] = np.bitwise_count(bits[a] & bits[b]).sum(axis=1, dtype=np.int64)
    return counts


def _spread_lut(width: int) -> np.ndarray:
    """lut[v] puts bit i of the (64 // width)-bit value v into field i (of `width` bits) of a uint64,
    so summing lut[mask] over rows counts every bit at once (no carries while counts < 2**width)."""
    f = 64 // width
    v = np.arange(1 << f, dtype=np.uint64)
    return sum(((v >> np.uint64(i)) & np.uint64(1)) << np.uint64(width * i) for i in range(f)).astype(np.uint64)


def _batched_mask_intersections(frames: list[pl.LazyFrame], sample_ids: np.ndarray, k: int, sample_block: int,
                                table_bytes: int) -> np.ndarray | None:
    """`_mask_intersections` for any number of probes: up to 64 at once; beyond, the probes in groups
    of MASK_BITS // 2 and every two groups counted together (each pair taken from the first batch
    holding both), so each table is read once per other group and no mask needs more than 64 bits."""
    n_probes = len(frames)
    if n_probes <= 64:
        return _mask_intersections(frames, sample_ids, k, sample_block, table_bytes)
    pa, pb = pair_index(n_probes)
    out = np.zeros((len(pa), len(sample_ids)), np.int64)
    done = np.zeros(len(pa), bool)
    groups = _probe_groups(n_probes)
    for gi, gj in combinations(range(len(groups)), 2):
        members = groups[gi] + groups[gj]
        todo = np.flatnonzero(np.isin(pa, members) & np.isin(pb, members) & ~done)
        counts = _mask_intersections([frames[i] for i in members], sample_ids, k, sample_block, table_bytes)
        if counts is None:
            return None
        la, lb = pair_index(len(members))
        row = {(members[a], members[b]): j for j, (a, b) in enumerate(zip(la, lb))}
        out[todo] = counts[[row[pa[t], pb[t]] for t in todo]]
        done[todo] = True
    assert done.all(), "every pair of probes is counted by some batch"
    return out


def _mask_intersections(frames: list[pl.LazyFrame], sample_ids: np.ndarray, k: int, sample_block: int,
                        table_bytes: int) -> np.ndarray | None:
    """The counts (pairs, n) through a dense mask table (module docstring): for a sub-block of
    samples, table[row, neighbour] collects the bit of every probe listing that neighbour; reading it
    back at probe a's cells and summing the spread bits per sample gives |K_a ∩ K_b| for every b at
    once. Only touched cells are reset, so the cost is O(n·k·L), never O(n²). Every sample must have
    exactly k rows at every probe (complete tables; the cells then form (rows, k) arrays and every
    step is one array operation per sub-block); None when they do not."""
    n, n_probes = len(sample_ids), len(frames)
    mask_t = next(np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64) if np.dtype(t).itemsize * 8 >= n_probes)
    width = 8 if k < 1 << 8 else 16 if k < 1 << 16 else 32  # a field must hold a count up to k
    fields = 64 // width
    lut, low = _spread_lut(width), np.uint64((1 << fields) - 1)
    field_shifts, field_mask = np.arange(fields, dtype=np.uint64) * np.uint64(width), np.uint64((1 << width) - 1)
    sub = max(1, table_bytes // (n * mask_t.itemsize))
    table = np.zeros(sub * n, mask_t)
    bits = [mask_t.type(1 << p) for p in range(n_probes)]
    pa, pb = pair_index(n_probes)
    dense = ids_are_rows(sample_ids)
    result = np.zeros((len(pa), n), np.int64)  # written in the output's row order: no sort after
    for s in range(0, n, sample_block):
        ids = sample_ids[s : s + sample_block]
        got = pl.collect_all([_probe_rows(f, sample_ids, ids, k, dense) for f in frames])
        cols = []
        for df in got:
            row, col = _to_rows(df, sample_ids, ids, dense, True)
            if len(row) != len(ids) * k or not (np.array_equal(row[::k], np.arange(len(ids)))
                                                and np.array_equal(row[k - 1 :: k], np.arange(len(ids)))):
                return None  # sorted rows with the first and last of every k-run on its sample: k each
            cols.append(col.reshape(len(ids), k))
        for r0 in range(0, len(ids), sub):
            r1 = min(len(ids), r0 + sub)
            cells = np.empty((n_probes, r1 - r0, k), np.int64)
            offsets = (np.arange(r1 - r0, dtype=np.int64) * n)[:, None]
            for p in range(n_probes):  # one probe at a time: a cell listed by several probes gets every bit
                np.add(cols[p][r0:r1], offsets, out=cells[p])
                table.put(cells[p], table.take(cells[p]) | bits[p])
            masks = table.take(cells).astype(np.uint64)  # (probe a, row, neighbour of a) -> probes listing it
            counts = np.empty((n_probes, r1 - r0, -(-n_probes // fields) * fields), np.uint64)  # (a, row, b)
            for c in range(0, n_probes, fields):
                per_row = lut.take((masks >> np.uint64(c)) & low).sum(axis=2)  # (probe a, row), packed fields
                np.bitwise_and(per_row[..., None] >> field_shifts, field_mask, out=counts[:, :, c : c + fields])
            result[:, s + r0 : s + r1] = counts[pa, :, pb]
            table.put(cells, 0)
    return result


def _names(probes: list[ProbePoint], index: np.ndarray, side: str) -> list[pl.Series]:
    """model_<side> and layer_<side> string columns for an array of probe indices (a gather from the
    L names: no join, the row order is kept)."""
    idx = pl.Series(index, dtype=pl.UInt32)
    return [pl.Series([getattr(p, field) for p in probes], dtype=pl.String).gather(idx).alias(f"{field}_{side}")
            for field in ("model", "layer")]


def nnts(
    frames: list[pl.LazyFrame],
    probes: list[ProbePoint],
    sample_ids: np.ndarray,
    ks: list[int],
    sample_block: int = 20000,
    per_sample: str = "all",
    tick: Callable[[str], None] = lambda note: None,
    counted: Mapping[int, np.ndarray] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(nnts table, per-sample table) in the layouts of nnts_ray.schemas (NNTS, PER_SAMPLE).

    The nnts table holds every ordered pair including the diagonal (a symmetric L×L matrix with
    ones on the diagonal, by definition), ordered by (k, probe_a, probe_b); the per-sample table holds
    pairs a < b in probe order — all of them, those within one model, or none (`per_sample`) —
    ordered by (k, probe_a, probe_b, sample_id). Both are assembled from the count arrays in that
    order, so nothing is joined or sorted. `counted`: k -> (pairs, n) intersections already counted
    (the neighbours stage's set intersections), used instead of the tables for those k.
    """
    if per_sample not in PER_SAMPLE_PAIRS:
        raise ValueError(f"per_sample={per_sample!r}; choose one of {PER_SAMPLE_PAIRS}")
    sample_ids = np.asarray(sample_ids, dtype=np.int64)
    n, n_probes = len(sample_ids), len(probes)
    pa, pb = pair_index(n_probes)
    keep = {"all": np.ones(len(pa), bool), "none": np.zeros(len(pa), bool),
            "within": np.array([probes[a].model == probes[b].model for a, b in zip(pa, pb)], bool)}[per_sample]
    grid_a, grid_b = np.divmod(np.arange(n_probes * n_probes), n_probes)
    summary, rows = [], []
    for k in ks:
        counts = (counted or {}).get(k)
        if counts is None:
            counts = intersection_counts(frames, sample_ids, k, sample_block)  # (pairs, n)
        jac = jaccard(counts, k)
        matrices = []
        for per_pair in (jac.mean(axis=1), (counts / k).mean(axis=1)):  # per sample, then averaged
            m = np.eye(n_probes)
            m[pa, pb] = m[pb, pa] = per_pair
            matrices.append(m.ravel())
        cj, co = chance_levels(k, n)
        summary.append(pl.DataFrame([
            *_names(probes, grid_a, "a"), *_names(probes, grid_b, "b"),
            pl.Series("k", np.full(n_probes * n_probes, k), dtype=pl.Int64),
            pl.Series("jaccard", matrices[0]), pl.Series("overlap", matrices[1]),
            pl.Series("chance_jaccard", np.full(n_probes * n_probes, cj)),
            pl.Series("chance_overlap", np.full(n_probes * n_probes, co)),
            pl.Series("n_samples", np.full(n_probes * n_probes, n), dtype=pl.Int64),
        ]))
        rows.append(per_sample_rows(sample_ids, probes, pa[keep], pb[keep], k, counts[keep], jac[keep]))
        tick(f"NNTS k={k}")
    return pl.concat(summary), pl.concat(rows)


def per_sample_rows(sample_ids: np.ndarray, probes: list[ProbePoint], pa: np.ndarray, pb: np.ndarray, k: int,
                    counts: np.ndarray, jac: np.ndarray) -> pl.DataFrame:
    """The per-sample table (schemas.PER_SAMPLE) of pairs (pa[i], pb[i]) from their (pairs, n) counts."""
    n = len(sample_ids)
    ia, ib = np.repeat(pa, n), np.repeat(pb, n)
    return pl.DataFrame([
        pl.Series("sample_id", np.tile(sample_ids, len(pa)), dtype=pl.Int64),
        *_names(probes, ia, "a"), *_names(probes, ib, "b"),
        pl.Series("k", np.full(len(ia), k), dtype=pl.Int64),
        pl.Series("intersection", counts.ravel(), dtype=pl.Int64),
        pl.Series("jaccard", jac.ravel(), dtype=pl.Float64),
    ])
