"""Scaling benchmark: wall time of each stage and peak memory as n doubles, exact and approximate
search, on the synthetic images through LeNet-5 (a fixed selection of probe points, random init so
that training does not blur the picture).

    python -m nnts_ray.benchmarks.scaling --n 5000 10000 20000 40000 80000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nnts_ray.benchmarks.common import PeakRSS, machine

PROBES = "[input,P0,P1,R2,O]"


def run_once(n: int, index: str, root: Path) -> dict:
    run_dir = root / f"{index.replace(',', '_')}-{n}"
    args = [f"run_dir={run_dir}", "dataset=synthetic", f"dataset.synthetic.n={n}", "k=[15,100]",
            f"model.probes={PROBES}", "model.train.enabled=false", f"knn.index='{index}'",
            f"paths.cache_dir={root}/cache", "metrics.cka=false"]
    if index != "exact":
        args.append("knn.search_params='nprobe=8'")
    exe = Path(sys.executable).with_name("nnts-ray")
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(exe), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rss = PeakRSS(pid=proc.pid, interval=0.5)
    with rss.watch():
        proc.wait()
    if proc.returncode:
        raise SystemExit(f"run failed: nnts-ray {' '.join(args)}")
    m = json.loads((run_dir / "manifest.json").read_text())
    recall = m["conventions"]["index"]["recall"]
    return {"n": n, "index": index, "wall": time.perf_counter() - t0, "rss": rss.peak_gib,
            "stages": {s: r["seconds"] for s, r in m["stages"].items()},
            "recall": min(recall.values()) if isinstance(recall, dict) else recall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[5000, 10000, 20000, 40000, 80000])
    ap.add_argument("--index", nargs="+", default=["exact", "IVF256,Flat"])
    a = ap.parse_args()
    print(f"machine: {machine()}; probes {PROBES}, k = 15, 100\n")
    print("| index | n | activations s | neighbours s | metrics s | total wall s | × previous n | "
          "peak RSS GiB | min recall@100 |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for index in a.index:
            prev = None
            for n in a.n:
                r = run_once(n, index, Path(tmp))
                st = r["stages"]
                growth = f"{r['wall'] / prev:.2f}" if prev else "–"
                print(f"| {index} | {n} | {st['activations']:.1f} | {st['neighbours']:.1f} | {st['metrics']:.1f} | "
                      f"{r['wall']:.1f} | {growth} | {r['rss']:.2f} | {r['recall']:.4f} |", flush=True)
                prev = r["wall"]


if __name__ == "__main__":
    main()
