"""Shared benchmark helpers: the machine, the float32 matmul rate, wall time, peak memory."""

from __future__ import annotations

import os
import platform
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import psutil


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}"


def matmul_gflops(n: int = 4096, repeat: int = 3) -> float:
    """The machine's float32 GEMM rate (numpy BLAS), best of `repeat`: the floor for exact search."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    best = min(timed(lambda: a @ b) for _ in range(repeat))
    return 2 * n**3 / best / 1e9


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@dataclass
class PeakRSS:
    """Peak resident memory of a process and all its descendants (Ray's raylet and workers included),
    sampled every `interval` seconds in a background thread. `peak_bytes` sums each process's RSS, so
    pages shared between processes (torch's libraries in every Ray worker, the object store) count once
    per process; with `pss=True`, `peak_pss_bytes` sums proportional set sizes: each shared page split
    among its users, the physical memory the tree really holds."""

    pid: int = field(default_factory=os.getpid)
    interval: float = 0.5
    peak_bytes: int = 0
    pss: bool = False
    peak_pss_bytes: int = 0

    def sample(self) -> int:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = pss = 0
        for p in procs:
            try:
                if self.pss:
                    info = p.memory_full_info()
                    total, pss = total + info.rss, pss + info.pss
                else:
                    total += p.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        self.peak_pss_bytes = max(self.peak_pss_bytes, pss)
        return total

    @contextmanager
    def watch(self):
        stop = threading.Event()

        def loop():
            while not stop.is_set():
                self.peak_bytes = max(self.peak_bytes, self.sample())
                stop.wait(self.interval)

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        try:
            yield self
        finally:
            stop.set()
            t.join()

    @property
    def peak_gib(self) -> float:
        return self.peak_bytes / 2**30

    @property
    def peak_pss_gib(self) -> float:
        return self.peak_pss_bytes / 2**30
