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


def _linked(run_dir: Path, model: str, layer: str) -> bool:
    """A probe point whose neighbour files were linked from an identical feature matrix (not searched)."""
    from nnts_ray.io import read_json
    from nnts_ray.naming import RunPaths
    from nnts_ray.stages.neighbours import _part_name

    marker = RunPaths(run_dir).marker("neighbours", model, layer, _part_name(0))
    try:
        return bool(read_json(marker).get("same_as"))
    except (OSError, ValueError):
        return False


def main(argv: list[str]) -> None:
    from nnts_ray.cli import load_config

    rc = load_config(argv)
    gflops = matmul_gflops()
    exe = Path(sys.executable).with_name("nnts-ray")
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(exe), *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rss = PeakRSS(pid=proc.pid, interval=1.0, pss=True)
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
    searched = [p for name, model in m["models"].items() for p in model["probe_points"]
                if not _linked(Path(rc.run_dir), name, p["layer"])]
    flops = sum(2 * n * n * p["dim"] for p in searched)  # identical feature matrices are searched once
    floor = flops / (gflops * 1e9)
    n_probes = sum(len(model["probe_points"]) for model in m["models"].values())
    print(f"\nmachine: {machine()}; float32 matmul {gflops:.0f} GFLOP/s")
    print(f"command: nnts-ray {' '.join(argv)}")
    print("| stage | seconds |\n| --- | ---: |")
    for stage, rec in m["stages"].items():
        print(f"| {stage} | {rec.get('seconds', float('nan')):.1f} |")
    print(f"| total wall (incl. start-up) | {wall:.1f} |")
    print(f"{len(m['models'])} models, {n_probes} probe points, {len(searched)} distinct feature matrices searched")
    print(f"exact-search GEMM floor {floor:.1f} s ({flops / 1e12:.1f} TFLOP); "
          f"total / floor = {wall / floor:.2f}; neighbours stage / floor = {m['stages']['neighbours']['seconds'] / floor:.2f}")
    print(f"peak memory of the process tree: RSS summed {rss.peak_gib:.2f} GiB (shared pages once per process), "
          f"PSS summed {rss.peak_pss_gib:.2f} GiB (shared pages split among their users)")
    print(f"held (anonymous + shared memory, PSS; mapped feature files left out): peak {rss.peak_held_gib:.2f} GiB "
          f"at {rss.peak_held_at:.0f} s: {rss.peak_breakdown()}")
    stages = {s: r.get("seconds", 0.0) for s, r in m["stages"].items()}
    print("share of the total: " + ", ".join(f"{s} {v / wall:.0%}" for s, v in stages.items())
          + f", outside any stage {(wall - sum(stages.values())) / wall:.0%}")
    size = sum(f.stat().st_size for f in (Path(rc.run_dir) / "neighbours").rglob("*.parquet"))
    print(f"neighbour tables on disk: {size / 2**30:.2f} GiB")


if __name__ == "__main__":
    main(sys.argv[1:])
