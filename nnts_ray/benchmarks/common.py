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


def _smaps_rollup(pid: int) -> dict[str, int]:
    """Bytes per field of /proc/<pid>/smaps_rollup (Pss, Pss_Anon, Pss_File, Pss_Shmem, ...)."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return out


@dataclass
class PeakRSS:
    """Peak resident memory of a process and all its descendants (Ray's raylet and workers included),
    sampled every `interval` seconds in a background thread. `peak_bytes` sums each process's RSS, so
    pages shared between processes (torch's libraries in every Ray worker, the object store) count once
    per process. With `pss=True` it also reads /proc/<pid>/smaps_rollup: `peak_pss_bytes` sums
    proportional set sizes (each shared page split among its users), and `peak_held_bytes` only
    their anonymous and shared-memory part (the object store): what the tree holds, leaving out the
    clean pages of memory-mapped feature files, which are page cache the kernel reclaims at will."""

    pid: int = field(default_factory=os.getpid)
    interval: float = 0.5
    peak_bytes: int = 0
    pss: bool = False
    peak_pss_bytes: int = 0
    peak_held_bytes: int = 0
    peak_held_at: float = 0.0  # seconds after `watch` began
    peak_held_by_process: dict = field(default_factory=dict)  # process name -> (count, held bytes) at that peak
    started: float = field(default_factory=time.monotonic, repr=False)  # reset by `watch`

    def sample(self) -> int:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = pss = held = 0
        by_name: dict[str, tuple[int, int]] = {}
        for p in procs:
            try:
                total += p.memory_info().rss
                if self.pss:
                    rollup = _smaps_rollup(p.pid)
                    mine = rollup.get("Pss_Anon", 0) + rollup.get("Pss_Shmem", 0)
                    pss, held = pss + rollup.get("Pss", 0), held + mine
                    count, so_far = by_name.get(p.name(), (0, 0))
                    by_name[p.name()] = (count + 1, so_far + mine)
            except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
                pass
        self.peak_pss_bytes = max(self.peak_pss_bytes, pss)
        if held > self.peak_held_bytes:
            self.peak_held_bytes, self.peak_held_by_process = held, by_name
            self.peak_held_at = time.monotonic() - self.started
        return total

    @contextmanager
    def watch(self):
        stop = threading.Event()

        def loop():
            while not stop.is_set():
                self.peak_bytes = max(self.peak_bytes, self.sample())
                stop.wait(self.interval)

        self.started = time.monotonic()
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

    @property
    def peak_held_gib(self) -> float:
        return self.peak_held_bytes / 2**30

    def peak_breakdown(self, top: int = 6) -> str:
        """The held-memory peak by process name, largest first: "2 x ray::ShardSearc 3.10 GiB, ..."."""
        ranked = sorted(self.peak_held_by_process.items(), key=lambda kv: -kv[1][1])
        return ", ".join(f"{c} x {name} {b / 2**30:.2f} GiB" for name, (c, b) in ranked[:top])
