"""NNTS — per-sample Jaccard of k-NN sets between probe points (SPEC §1), with Polars.

Input is one LazyFrame of neighbour rows `(sample_id, rank, neighbour_id)` per probe point, in the
order of a list of `Probe`s (any mix of models: cross-model pairs come out of the same computation).
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

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import polars as pl

MASK_BITS = 62  # probes per mask (int64, sign bit unused)


@dataclass(frozen=True)
class Probe:
    model: str
    layer: str
    position: int


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


def ids_are_rows(sample_ids: np.ndarray) -> bool:
    """Sorted unique ids 0..n-1: an id is its own row, so no lookup is needed."""
    n = len(sample_ids)
    return n > 0 and sample_ids[0] == 0 and sample_ids[-1] == n - 1


def use_bitsets(k: int, n: int) -> bool:
    """Dense neighbourhoods (k a sizeable fraction of n, e.g. the paper's k = n/5) are cheaper as
    bit sets of n bits per sample and probe than as rows to group."""
    return k * 64 >= n


def intersections(
    frames: list[pl.LazyFrame], sample_ids: np.ndarray, k: int, sample_block: int,
    bitset_bytes: int = 1 << 28, method: str = "auto",
) -> pl.DataFrame:
    """Per-sample |K_a ∩ K_b| for every pair a < b of the probe points whose neighbour rows are
    `frames`: columns sample_id, probe_a, probe_b, intersection, ordered by (probe_a, probe_b, sample_id).

    Samples are processed in blocks of `sample_block` ids (fewer when bit sets of the block would
    exceed `bitset_bytes`); every sample of `sample_ids` appears in every pair (zero overlaps
    included: the denominator is the full sample set, never a join result). `method`: "auto",
    "masks", "bitset" or "group_by" (identical counts; auto picks bit sets for dense k, masks for
    sparse k with at most 64 probes, the group-by beyond).
    """
    n_probes, sample_ids = len(frames), np.asarray(sample_ids, dtype=np.int64)
    if method == "auto":
        method = "bitset" if use_bitsets(k, len(sample_ids)) else "masks" if n_probes <= 64 else "group_by"
    if method == "bitset":
        step = max(1, min(sample_block, 8 * bitset_bytes // max(1, n_probes * len(sample_ids))))
        return _bitset_intersections(frames, sample_ids, k, step)
    if method == "masks":
        return _mask_intersections(frames, sample_ids, k, sample_block, table_bytes=min(bitset_bytes, 1 << 24))
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
    return pl.concat(out).sort("probe_a", "probe_b", "sample_id") if out else _pair_frame(sample_ids, n_probes, None)


def _pair_frame(sample_ids: np.ndarray, n_probes: int, counts: np.ndarray | None) -> pl.DataFrame:
    """The intersections layout from counts (pairs, n) in combinations order (None: no rows)."""
    pairs = np.array(list(combinations(range(n_probes), 2)), dtype=np.int32).reshape(-1, 2)
    n = 0 if counts is None else len(sample_ids)
    return pl.DataFrame({
        "sample_id": np.tile(sample_ids[:n], len(pairs)),
        "probe_a": np.repeat(pairs[:, 0], n),
        "probe_b": np.repeat(pairs[:, 1], n),
        "intersection": np.zeros(0, np.int64) if counts is None else counts.ravel().astype(np.int64),
    }, schema={"sample_id": pl.Int64, "probe_a": pl.Int32, "probe_b": pl.Int32, "intersection": pl.Int64})


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
        row, col = np.searchsorted(ids, row), np.searchsorted(sample_ids, col)
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
    row = np.searchsorted(ids, got["sample_id"].to_numpy())
    return [row * width + np.searchsorted(sample_ids, got["neighbour_id"].to_numpy())]


def _bitset_intersections(frames: list[pl.LazyFrame], sample_ids: np.ndarray, k: int, step: int) -> pl.DataFrame:
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
    return _pair_frame(sample_ids, n_probes, counts)


def _spread_lut(width: int) -> np.ndarray:
    """lut[v] puts bit i of the (64 // width)-bit value v into field i (of `width` bits) of a uint64,
    so summing lut[mask] over rows counts every bit at once (no carries while counts < 2**width)."""
    f = 64 // width
    v = np.arange(1 << f, dtype=np.uint64)
    return sum(((v >> np.uint64(i)) & np.uint64(1)) << np.uint64(width * i) for i in range(f)).astype(np.uint64)


def _mask_intersections(frames: list[pl.LazyFrame], sample_ids: np.ndarray, k: int, sample_block: int,
                        table_bytes: int) -> pl.DataFrame:
    """The counts through a dense mask table (module docstring): for a sub-block of samples,
    table[row, neighbour] collects the bit of every probe listing that neighbour; reading it back at
    probe a's rows and summing the spread bits per sample gives |K_a ∩ K_b| for every b at once.
    Only touched cells are reset, so the cost is O(n·k·L), never O(n²)."""
    n, n_probes = len(sample_ids), len(frames)
    mask_t = next(np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64) if np.dtype(t).itemsize * 8 >= n_probes)
    width = 8 if k < 1 << 8 else 16 if k < 1 << 16 else 32  # a field must hold a count up to k
    fields = 64 // width
    lut, low = _spread_lut(width), np.uint64((1 << fields) - 1)
    field_shifts = np.arange(fields, dtype=np.uint64) * np.uint64(width)
    sub = max(1, table_bytes // (n * mask_t.itemsize))
    table = np.zeros(sub * n, mask_t)
    pairs = list(combinations(range(n_probes), 2))
    pa, pb = np.array(pairs, dtype=np.intp).reshape(-1, 2).T
    dense = ids_are_rows(sample_ids)
    result = np.zeros((len(pairs), n), np.int64)  # written in the output's row order: no sort after
    for s in range(0, n, sample_block):
        ids = sample_ids[s : s + sample_block]
        got = pl.collect_all([_probe_rows(f, sample_ids, ids, k, dense) for f in frames])
        per_probe = [_to_rows(df, sample_ids, ids, dense, True) for df in got]
        probe = np.repeat(np.arange(n_probes), [len(r) for r, _ in per_probe])
        row, col = (np.concatenate([rc[i] for rc in per_probe]) for i in (0, 1))
        seg = np.searchsorted(probe, np.arange(n_probes + 1))
        cell = row.astype(np.int64) * n + col  # the sample's table row, minus the sub-block offset below
        firsts = np.flatnonzero(np.diff(probe, prepend=-1) | np.diff(row, prepend=-1))  # (probe, sample) starts
        counts = np.zeros((len(ids), n_probes, n_probes), np.int64)
        for b0 in range(0, len(ids), sub):
            cells = []
            for p in range(n_probes):
                bounds = np.array([b0, b0 + sub], row.dtype)  # same dtype: no cast of the whole slice
                lo, hi = seg[p] + np.searchsorted(row[seg[p] : seg[p + 1]], bounds)
                flat = cell[lo:hi] - b0 * n
                table.put(flat, table.take(flat) | mask_t.type(1 << p))
                cells.append((lo, hi, flat))
            for p, (lo, hi, flat) in enumerate(cells):
                if lo == hi:
                    continue
                m = table.take(flat).astype(np.uint64)
                starts = firsts[np.searchsorted(firsts, lo) : np.searchsorted(firsts, hi)] - lo
                r = row[lo:hi]
                for c in range(p // fields * fields, n_probes, fields):  # only bits of probes b ≥ a
                    acc = np.add.reduceat(lut.take((m >> np.uint64(c)) & low), starts)
                    got = (acc[:, None] >> field_shifts) & np.uint64((1 << width) - 1)
                    counts[r[starts], p, c : c + fields] = got[:, : n_probes - c]
            for *_, flat in cells:
                table.put(flat, 0)
        result[:, s : s + len(ids)] = counts[:, pa, pb].T
    return _pair_frame(sample_ids, n_probes, result)


def _with_probe_names(df: pl.DataFrame, probes: list[Probe]) -> pl.DataFrame:
    names = pl.DataFrame(
        {
            "probe": pl.Series(range(len(probes)), dtype=pl.Int32),
            "model": [p.model for p in probes],
            "layer": [p.layer for p in probes],
        }
    )
    for side in ("a", "b"):
        df = df.join(
            names.rename({"probe": f"probe_{side}", "model": f"model_{side}", "layer": f"layer_{side}"}),
            on=f"probe_{side}",
            how="left",
            validate="m:1",
        )
    return df


def nnts(
    frames: list[pl.LazyFrame],
    probes: list[Probe],
    sample_ids: np.ndarray,
    ks: list[int],
    sample_block: int = 20000,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(nnts table, per-sample table) in the SPEC §4 layouts.

    The nnts table holds every ordered pair including the diagonal (a symmetric L×L matrix with
    ones on the diagonal, by definition); the per-sample table holds pairs a < b in probe order.
    """
    n = len(sample_ids)
    per_sample, summary = [], []
    for k in ks:
        inter = intersections(frames, sample_ids, k, sample_block)
        inter = inter.with_columns(
            k=pl.lit(k, pl.Int64),
            jaccard=pl.col("intersection") / (2 * k - pl.col("intersection")),
        )
        per_sample.append(inter)
        cj, co = chance_levels(k, n)
        means = inter.group_by("probe_a", "probe_b").agg(
            jaccard=pl.col("jaccard").mean(),
            overlap=(pl.col("intersection") / k).mean(),  # per sample, never from the averaged value
            n_samples=pl.len().cast(pl.Int64),
        )
        diag = pl.DataFrame(
            {
                "probe_a": pl.Series(range(len(probes)), dtype=pl.Int32),
                "probe_b": pl.Series(range(len(probes)), dtype=pl.Int32),
                "jaccard": [1.0] * len(probes),
                "overlap": [1.0] * len(probes),
                "n_samples": pl.Series([n] * len(probes), dtype=pl.Int64),
            }
        )
        mirrored = means.rename({"probe_a": "probe_b", "probe_b": "probe_a"}).select(means.columns)
        full = pl.concat([means, mirrored, diag.select(means.columns)])
        summary.append(
            full.with_columns(
                k=pl.lit(k, pl.Int64), chance_jaccard=pl.lit(cj), chance_overlap=pl.lit(co)
            )
        )
    table = _with_probe_names(pl.concat(summary), probes).sort("k", "probe_a", "probe_b")
    table = table.select(
        "model_a", "layer_a", "model_b", "layer_b", "k", "jaccard", "overlap",
        "chance_jaccard", "chance_overlap", "n_samples",
    )
    ps = _with_probe_names(pl.concat(per_sample), probes).sort("k", "probe_a", "probe_b", "sample_id")
    ps = ps.select("sample_id", "model_a", "layer_a", "model_b", "layer_b", "k", "intersection", "jaccard")
    return table, ps
