"""Progress of long work on stderr (stdout stays the run's summary): a bar that redraws itself on a
terminal, plain timestamped lines in a log. Every step that can take more than a few seconds reports
done / total and an ETA."""

from __future__ import annotations

import sys
import time

_T0 = time.perf_counter()
_LINE_EVERY_S = 10.0  # a log gets a line at most this often per task (plus the first step and the last)


def log(msg: str) -> None:
    _end_bar()
    print(f"[nnts-ray {time.perf_counter() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def warn(msg: str) -> None:
    log(f"warning: {msg}")


_bar_open = False


def _end_bar() -> None:
    global _bar_open
    if _bar_open:
        sys.stderr.write("\n")
        _bar_open = False


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """`with Progress("neighbours lenet5/C0", total=59, unit="parts") as p: ... p.advance()`."""

    def __init__(self, what: str, total: int, unit: str = "", done_before: int = 0, tty: bool | None = None):
        self.what, self.total, self.unit = what, max(int(total), 0), unit
        self.done = self.done_before = done_before  # a resumed task: the part finished by an earlier attempt
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.t0 = self._last = time.perf_counter()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        _end_bar()

    def advance(self, n: int = 1, note: str = "") -> None:
        self.done += n
        now = time.perf_counter()
        finished = self.done >= self.total
        first = self.done - n == self.done_before  # the first step of this attempt: the earliest ETA
        if self.tty:
            self._draw(now, note)
            if finished:
                _end_bar()
        elif finished or first or now - self._last >= _LINE_EVERY_S:
            self._last = now
            log(self.line(now, note))

    def step(self, note: str = "") -> None:
        """One unit done: a callback for code that reports its steps (`tick` parameters)."""
        self.advance(1, note)

    def line(self, now: float, note: str = "") -> str:
        elapsed = now - self.t0
        text = f"{self.what}: {self.done}/{self.total}{' ' + self.unit if self.unit else ''}"
        now_done = self.done - self.done_before
        if self.done < self.total and now_done > 0:
            text += f", ETA {_duration(elapsed / now_done * (self.total - self.done))}"
        elif self.done >= self.total:
            text += f" in {_duration(elapsed)}"
            if self.done_before:
                text += f" ({self.done_before} done before)"
        return text + (f" ({note})" if note else "")

    def _draw(self, now: float, note: str) -> None:
        global _bar_open
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        sys.stderr.write(f"\r[nnts-ray {now - _T0:7.1f}s] [{bar}] {self.line(now, note)}\033[K")
        sys.stderr.flush()
        _bar_open = True
