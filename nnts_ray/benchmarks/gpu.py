"""GPU benchmark for a lent CUDA machine: one command, under 8 minutes, everything side by side in one run.

    python -m nnts_ray.benchmarks.gpu                  # n = 60,000; d = 400 (LeNet-5's P1) and 4,704 (C0)
    python -m nnts_ray.benchmarks.gpu --n 20000 --quick

Prints, for each feature width: bare faiss-gpu `knn_gpu` (where faiss-gpu is installed) and bare
torch GEMM + top-k, against nnts_ray's search as the search stage runs it on a GPU actor (ShardIndex
on cuda: faiss-gpu or torch top-k, exact re-scoring of the leading ranks, tie completion), at k = 15,
100 and the paper's set-only k = n/10, n/5 (bit sets from the same GEMM); the effective TFLOP/s of
each (2·n²·d) against a torch float32 matmul rate measured in the same run (TF32 off); and whether
every GPU result equals the CPU path's on a sample of queries (ranked neighbours for the stored k,
set membership for the large k). Then the paper-scale metrics (NNTS at k = 15, 100 over 12 probe
points, on the CPU: the metrics stage has no GPU part). With no CUDA device it stops at once with
one line and exit code 2. `--device cpu` runs the same code on CPU tensors (a dry run: CI uses it, so
a lent GPU's minutes are never lost to a crash).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from nnts_ray.benchmarks.common import machine
from nnts_ray.benchmarks.search import features


DEVICE = "cuda"


def _sync() -> None:
    import torch

    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        _sync()
        t0 = time.perf_counter()
        fn()
        _sync()
        best = min(best, time.perf_counter() - t0)
    return best


def torch_tflops(n: int = 8192, repeat: int = 5) -> float:
    """The device's float32 matmul rate with TF32 off: the floor exact search is measured against."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    a = torch.randn(n, n, device=DEVICE)
    b = torch.randn(n, n, device=DEVICE)
    return 2 * n**3 / _best(lambda: a @ b, repeat) / 1e12


def _stage_search(index, x: np.ndarray, k: int, set_ks: list[int], block: int) -> list:
    """nnts_ray's per-part work on one device, over every query block (what the search actors do)."""
    from nnts_ray.knn.exact import candidates_needed

    n, out = len(x), []
    for lo in range(0, n, block):
        rows = np.arange(lo, min(n, lo + block), dtype=np.int64)
        if set_ks:
            out.append(index.search_with_sets(x[rows], rows, k + 1, candidates_needed(k, n), 128, set_ks))
        else:
            out.append(index.search(x[rows], k + 1, candidates_needed(k, n), 128))
    return out


def check_equal(x: np.ndarray, k: int, set_ks: list[int], sample: int) -> str:
    """GPU against CPU on `sample` queries: ranked neighbours (first k) and bit sets."""
    from nnts_ray.knn.exact import ShardIndex, candidates_needed, finalize, prepare

    n = len(x)
    rows = np.linspace(0, n - 1, sample).astype(np.int64)
    xp = prepare(x, "l2")
    cpu, gpu = ShardIndex(xp), ShardIndex(xp, device=DEVICE, force_backend=None if DEVICE != "cpu" else "torch")
    if set_ks:
        a = cpu.search_with_sets(xp[rows], rows, k + 1, candidates_needed(k, n), 128, set_ks)
        b = gpu.search_with_sets(xp[rows], rows, k + 1, candidates_needed(k, n), 128, set_ks)
    else:
        a = cpu.search(xp[rows], k + 1, candidates_needed(k, n), 128)
        b = gpu.search(xp[rows], k + 1, candidates_needed(k, n), 128)
    ranked = np.array_equal(finalize(rows, *a[:2], k, "l2").rows, finalize(rows, *b[:2], k, "l2").rows)
    sets = [float(np.mean(sa == sb)) for sa, sb in zip(a[2], b[2])] if set_ks else []
    return (f"ranked {'equal' if ranked else 'DIFFERENT'}"
            + "".join(f"; sets k={s}: {100 * f:.4f}% of words equal" for s, f in zip(set_ks, sets)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=60000)
    ap.add_argument("--d", type=int, nargs="+", default=[400, 4704])
    ap.add_argument("--block", type=int, default=4096, help="queries per part, as knn.query_block")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--check", type=int, default=512, help="queries compared with the CPU path")
    ap.add_argument("--quick", action="store_true", help="skip the metrics section")
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:<i>, or cpu for a dry run on CPU tensors")
    a = ap.parse_args(argv)
    import torch

    global DEVICE
    DEVICE = a.device
    if a.device != "cpu" and not torch.cuda.is_available():
        print("nnts_ray.benchmarks.gpu: error: no CUDA device here (torch.cuda.is_available() is False); "
              "run it on a GPU machine with the project installed (faiss-gpu optional)", file=sys.stderr)
        sys.exit(2)
    import faiss

    from nnts_ray.knn.exact import ShardIndex, prepare, torch_topk

    t0 = time.perf_counter()
    rate = torch_tflops(8192 if a.device != "cpu" else 1024)
    gpu = torch.cuda.get_device_name(0) if a.device != "cpu" else "none (dry run on CPU tensors)"
    print(f"machine: {machine()}; GPU: {gpu}; torch {torch.__version__}; "
          f"faiss {faiss.__version__} ({'faiss-gpu' if hasattr(faiss, 'knn_gpu') else 'no faiss-gpu'})")
    print(f"torch float32 matmul (TF32 off): {rate:.1f} TFLOP/s\n")
    print("| n | d | k | method | seconds | TFLOP/s | % of matmul | equals CPU |\n| ---: | ---: | --- | --- | ---: | ---: | ---: | --- |")
    set_ks = [a.n // 10, a.n // 5]
    for d in a.d:
        x = prepare(features(a.n, d), "l2")
        flops = 2 * a.n * a.n * d
        index = ShardIndex(x, device=DEVICE, force_backend=None if DEVICE != "cpu" else "torch")
        methods = []
        for k in (15, 100):
            if hasattr(faiss, "knn_gpu") and DEVICE != "cpu":
                res = faiss.StandardGpuResources()
                methods.append((k, "bare faiss-gpu knn_gpu", lambda k=k: faiss.knn_gpu(res, x, x, k + 1), ""))
            methods.append((k, "bare torch GEMM + topk", lambda k=k: [torch_topk(x[lo:lo + a.block], x, k + 1, DEVICE)
                                                                    for lo in range(0, a.n, a.block)], ""))
            methods.append((k, "nnts_ray search (ShardIndex on cuda)",
                            lambda k=k: _stage_search(index, x, k, [], a.block), check_equal(x, k, [], a.check)))
        methods.append((f"100 + sets {set_ks}", "nnts_ray search with sets (the paper's k)",
                        lambda: _stage_search(index, x, 100, set_ks, a.block // 4),
                        check_equal(x, 100, set_ks, a.check)))
        for k, name, fn, equal in methods:
            fn()  # warm-up
            sec = _best(fn, a.repeat)
            tf = flops / sec / 1e12
            print(f"| {a.n} | {d} | {k} | {name} | {sec:.2f} | {tf:.1f} | {100 * tf / rate:.0f}% | {equal} |", flush=True)
    if not a.quick:
        from nnts_ray.benchmarks import metrics

        print("\npaper-scale metrics (CPU):")
        metrics.main(["--n", str(a.n), "--probes", "12", "--k", "15", "100", "--repeat", "1"])
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
