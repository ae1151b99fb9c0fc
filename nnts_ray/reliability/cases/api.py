"""The notebook API with arguments a user gets wrong, and the numbers it and the pipeline compute
checked against the brute-force references (`reliability.reference`).

Bad arguments must raise ValueError or TypeError with one line naming what is wrong; anything else
escaping (StopIteration, IndexError, …) counts as a traceback. Numbers must equal the reference, or
the call must be refused: a value labelled k = 7 computed on the k = 5 graph is the worst outcome."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nnts_ray.reliability import reference, targets
from nnts_ray.reliability.model import Call, Case, Check, Observation, Raises

PROBE = "nnts_ray.reliability.cases.api:probe"
N = 50


def _chain(n: int = N, seed: int = 0) -> dict[str, np.ndarray]:
    """Three layers whose neighbourhoods partly persist: input, a noisy copy, a random map."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6))
    hidden = x + 0.4 * rng.standard_normal((n, 6))
    return {"input": x, "hidden": hidden, "logits": np.tanh(x @ rng.standard_normal((6, 3)))}


def _with(**layers: Any) -> dict[str, Any]:
    return {**_chain(), **layers}


# name -> (analyse kwargs (k=[5] unless given), what is tried, names the message must give, listed in issue 12)
BAD: dict[str, tuple[Callable[[], dict], str, tuple[str, ...], bool]] = {
    "empty-features": (lambda: {"features": {}}, "`analyse({})`", ("features",), True),
    "k-empty": (lambda: {"features": _chain(), "k": []}, "`k=[]`", ("k",), True),
    "zero-d": (lambda: {"features": _with(hidden=np.float32(1.0))}, "a 0-d array as a layer", ("hidden",), True),
    "zero-rows": (lambda: {"features": {"input": np.zeros((0, 4)), "hidden": np.zeros((0, 4))}, "k": [1]},
                  "(0, 4) arrays", ("input",), True),
    "object-dtype": (lambda: {"features": _with(hidden=np.array([["a", 1]] * N, dtype=object))},
                     "an object-dtype array", ("hidden",), True),
    "beyond-float32": (lambda: {"features": _with(hidden=_chain()["hidden"] * 1e300)},
                       "float64 values beyond float32 range (1e300)", ("hidden",), True),
    "nntp_k-ge-n": (lambda: {"features": _chain(), "k": [5], "nntp_k": [60]}, f"`nntp_k=[60]` with n = {N}",
                    ("nntp_k", "60"), True),
    "alpha-negative": (lambda: {"features": _chain(), "k": [5], "alpha": [-1]}, "`alpha=[-1]`", ("alpha", "-1"), True),
    "k-ge-n": (lambda: {"features": _chain(), "k": [N]}, f"`k=[{N}]` with n = {N}", ("k", str(N)), False),
    "k-zero": (lambda: {"features": _chain(), "k": [0]}, "`k=[0]`", ("k", "0"), False),
    "k-negative": (lambda: {"features": _chain(), "k": [-3]}, "`k=[-3]`", ("k", "-3"), False),
    "nntp_k-zero": (lambda: {"features": _chain(), "k": [5], "nntp_k": [0]}, "`nntp_k=[0]`", ("nntp_k", "0"), False),
    "rows-differ": (lambda: {"features": _with(hidden=np.zeros((N - 1, 6)))}, "layers of 50 and 49 rows",
                    ("hidden",), False),
    "nan": (lambda: {"features": _with(hidden=np.full((N, 6), np.nan))}, "NaN features", ("hidden",), False),
    "duplicate-ids": (lambda: {"features": _chain(), "sample_ids": np.r_[np.arange(N - 1), 3]},
                      "sample_ids with 3 twice", ("sample_ids",), False),
    "ids-length": (lambda: {"features": _chain(), "sample_ids": np.arange(N - 1)}, "49 sample_ids for 50 rows",
                   ("sample_ids",), False),
    "metric-bogus": (lambda: {"features": _chain(), "metric": "bogus"}, "`metric='bogus'`", ("bogus",), False),
}


def deliberate(e: Exception) -> bool:
    """A refusal the product meant: a ValueError/TypeError from a `raise` statement of its own code
    (not numpy failing inside it, not a built-in raising on a bad operand)."""
    import nnts_ray

    frame = traceback.extract_tb(e.__traceback__)[-1]
    own = Path(frame.filename).resolve().is_relative_to(Path(nnts_ray.__file__).resolve().parent)
    return isinstance(e, (ValueError, TypeError)) and own and (frame.line or "").lstrip().startswith("raise")


def probe(name: str) -> dict:
    """Call analyse with the bad arguments `name`; what it raised, or what it returned."""
    analyse = targets.resolve(targets.ANALYSE)
    try:
        res = analyse(**{"k": [5], **BAD[name][0]()})  # k = 5 < n unless the case is about k
    except Exception as e:  # noqa: BLE001 — what escapes is the finding
        line = f"{type(e).__name__}: {e}".splitlines()[0] if str(e) else type(e).__name__
        return {"raised": type(e).__name__, "message": str(e), "line": line, "traceback": not deliberate(e)}
    returned = f"returned {res.nnts.height} NNTS rows, {res.nntp.height} NNTP rows"
    return {"raised": None, "returned": returned, "line": returned, "traceback": False}


# ------------------------------------------------------------------ numbers against the references


def _nntp_table(res, k: int, alpha: int = 0) -> dict[tuple[int, int], int]:
    order = {name: i for i, name in enumerate(dict.fromkeys(res.nnts["layer_a"].to_list()))}
    t = res.nntp.filter(k=k, alpha=alpha)
    return {(order[a], order[b]): int(v) for a, b, v in zip(t["layer_first"], t["layer_last"], t["n_pairs"])}


def nntp_at_other_k() -> dict:
    """`analyse(k=[5], nntp_k=[7])` against NNTP on the true k = 7 graphs."""
    chain = _chain()
    try:
        res = targets.resolve(targets.ANALYSE)(chain, k=[5], nntp_k=[7])
    except (ValueError, TypeError) as e:
        return {"refused": str(e)}
    want = reference.nntp([reference.neighbour_sets(x, 7) for x in chain.values()])
    got = _nntp_table(res, 7)
    cells = [[a, b, got.get((a, b), 0), want.get((a, b), 0)] for a, b in sorted(set(want) | set(got))]
    return {"cells": cells, "line": "T[a,b] labelled k=7 / true k=7: " + ", ".join(
        f"T[{a},{b}] {g}/{w}" for a, b, g, w in cells[:4])}


def nnts_and_nntp_vs_reference() -> dict:
    """NNTS at k = 4, 9 and NNTP at α = 0, 1 of the API against sets and a pair-by-pair walk."""
    chain = _chain()
    res = targets.resolve(targets.ANALYSE)(chain, k=[4, 9], nntp_k=[4], alpha=[0, 1])
    names, worst = list(chain), 0.0
    for k in (4, 9):
        sets = {n: reference.neighbour_sets(x, k) for n, x in chain.items()}
        for a in names:
            for b in names:
                got = res.nnts.filter(k=k, layer_a=a, layer_b=b)["jaccard"][0]
                worst = max(worst, abs(got - reference.nnts(sets[a], sets[b])))
    chain_sets = [reference.neighbour_sets(x, 4) for x in chain.values()]
    nntp_ok = all(_nntp_table(res, 4, a) == dict(reference.nntp(chain_sets, a)) for a in (0, 1))
    return {"nnts_max_error": worst, "nntp_equal": nntp_ok,
            "line": f"largest NNTS difference {worst:.2g}; NNTP {'equal' if nntp_ok else 'differs'}"}


def run_vs_api(run_dir: str) -> dict:
    """The pipeline's NNTS and NNTP (k = 5, 10) against the API on the run's own features.npy."""
    import json

    import polars as pl

    run = Path(run_dir)
    layers = [p["layer"] for p in json.loads((run / "manifest.json").read_text())["models"]["lenet5"]["probe_points"]]
    feats = {name: np.load(run / "activations" / "model=lenet5" / f"layer={name}" / "features.npy") for name in layers}
    res = targets.resolve(targets.ANALYSE)(feats, k=[5, 10], nntp_k=[5], model="lenet5")
    nnts = pl.read_parquet(run / "metrics" / "nnts.parquet").select("layer_a", "layer_b", "k", "jaccard")
    key = ["layer_a", "layer_b", "k"]
    both = nnts.join(res.nnts.select(*key, "jaccard"), on=key, suffix="_api")
    nntp = pl.read_parquet(run / "metrics" / "nntp.parquet").sort("layer_first", "layer_last", "alpha")
    api = res.nntp.sort("layer_first", "layer_last", "alpha")
    worst = float((both["jaccard"] - both["jaccard_api"]).abs().max())
    equal = nntp["n_pairs"].to_list() == api["n_pairs"].to_list()
    line = f"{both.height} NNTS values, largest difference {worst:.2g}; NNTP {'equal' if equal else 'differs'}"
    return {"nnts_max_error": worst, "nntp_equal": equal, "line": line}


def _nntp_other_k_judged(obs: Observation) -> list[str]:
    r = obs.capture.result if obs.capture else None
    if not r:
        return [f"probe failed (exit {obs.capture.exit if obs.capture else '—'})"]
    if "refused" in r:
        return []
    wrong = [(a, b, got, want) for a, b, got, want in r["cells"] if got != want]
    shown = ", ".join(f"T[{a},{b}] {got} (true {want})" for a, b, got, want in wrong[:3])
    return [f"NNTP labelled k=7 differs from the true k=7 values: {shown}"] if wrong else []


def _close(obs: Observation) -> list[str]:
    r = obs.capture.result if obs.capture else None
    if not r:
        return [f"probe failed (exit {obs.capture.exit if obs.capture else '—'})"]
    problems = [] if r["nnts_max_error"] < 1e-12 else [f"NNTS differs by {r['nnts_max_error']:.3g}"]
    return problems + ([] if r["nntp_equal"] else ["NNTP differs from the reference"])


def cases() -> list[Case]:
    out = [Case(f"api/{name}", "api", tried, Call(PROBE, {"name": name}), Raises(mentions), in_issue=issue)
           for name, (_, tried, mentions, issue) in BAD.items()]
    out += [
        Case("numbers/api-nntp_k-7-with-k-5", "numbers",
             "`analyse(..., k=[5], nntp_k=[7])` vs NNTP on the true k = 7 graphs",
             Call("nnts_ray.reliability.cases.api:nntp_at_other_k"), Check(_nntp_other_k_judged), in_issue=True),
        Case("numbers/api-vs-reference", "numbers", "API NNTS (k = 4, 9) and NNTP (α = 0, 1) vs sets and a pair walk",
             Call("nnts_ray.reliability.cases.api:nnts_and_nntp_vs_reference"), Check(_close)),
        Case("numbers/run-vs-api", "numbers", "the base run's NNTS and NNTP vs the API on its own features.npy",
             Call("nnts_ray.reliability.cases.api:run_vs_api", {"run_dir": "{base}"}), Check(_close), needs_base=True),
    ]
    return out
