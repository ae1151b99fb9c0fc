"""Progress lines for long work, on stderr so stdout stays the run's summary."""

from __future__ import annotations

import sys
import time

_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[nnts-ray {time.perf_counter() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)
