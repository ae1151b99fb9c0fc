"""End-to-end benchmark: run `nnts-ray` with the given overrides in a subprocess, sample the peak RSS
of its whole process tree (Ray included), and report per-stage wall times from the manifest next to
the float32 GEMM floor of its exact searches (2·n²·d per probe point, at the machine's measured rate).

    python -m nnts_ray.benchmarks.end_to_end experiment=paper_scale_synthetic
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from nnts_ray.benchmarks.common import PeakRSS, machine, matmul_gflops


def main(argv: list[str]) -> None:
    from nnts_ray.cli import load_config

    rc = load_config(argv)
    gflops = matmul_gflops()
    exe = Path(sys.executable).with_name("nnts-ray")
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(exe), *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rss = PeakRSS(pid=proc.pid, interval=1.0)
    with rss.watch():
        for line in proc.stdout:  # type: ignore[union-attr]
            if line.startswith("[nnts-ray"):
                print(line, end="", flush=True)
        proc.wait()
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"nnts-ray failed with exit code {proc.returncode}")
    m = json.loads((Path(rc.run_dir) / "manifest.json").read_text())
    n = m["n_samples"]
    flops = sum(2 * n * n * p["dim"] for model in m["models"].values() for p in model["probe_points"])
    floor = flops / (gflops * 1e9)
    print(f"\nmachine: {machine()}; float32 matmul {gflops:.0f} GFLOP/s")
    print(f"command: nnts-ray {' '.join(argv)}")
    print("| stage | seconds |\n| --- | ---: |")
    for stage, rec in m["stages"].items():
        print(f"| {stage} | {rec.get('seconds', float('nan')):.1f} |")
    print(f"| total wall (incl. start-up) | {wall:.1f} |")
    print(f"exact-search GEMM floor {floor:.1f} s ({flops / 1e12:.1f} TFLOP); "
          f"total / floor = {wall / floor:.2f}; neighbours stage / floor = {m['stages']['neighbours']['seconds'] / floor:.2f}")
    print(f"peak RSS of the process tree: {rss.peak_gib:.2f} GiB")
    size = sum(f.stat().st_size for f in (Path(rc.run_dir) / "neighbours").rglob("*.parquet"))
    print(f"neighbour tables on disk: {size / 2**30:.2f} GiB")


if __name__ == "__main__":
    main(sys.argv[1:])
