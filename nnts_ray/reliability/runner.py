"""Starting one case process and collecting what it did: exit status, output, time, whether Ray started.

Two ways, one result type (`Capture`):
- forked (default): a fork of a server process that has imported the product already
  (multiprocessing's forkserver, preloaded with `targets.PRELOAD`); the entry point runs as the
  console script would. Costs ~0.3 s instead of the seconds of a fresh interpreter.
- fresh: a new interpreter running the console script's code, in its own session — for the cases
  where the process itself is the subject (the healthy run's output, signals, two runs at once).

Every case process gets its own RAY_TMPDIR, so a Ray cluster it starts is told apart from everyone
else's: whether Ray started is whether a session appeared there, and whatever is left running
afterwards (a killed driver's raylet, workers) is found by that directory and ended by process id.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from nnts_ray.reliability import child, targets

_LOCK = threading.Lock()
_CONTEXT: Any = None


def _forkserver():
    global _CONTEXT
    with _LOCK:
        if _CONTEXT is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload([*targets.PRELOAD, "nnts_ray.reliability.child"])
            _CONTEXT = ctx
    return _CONTEXT


BASE_CAPTURE = "capture.json"  # the base run's Capture, beside its run directory


@dataclass
class Capture:
    """What one case process did."""

    exit: int | None  # None: still running when its time ran out, or stopped (then killed)
    stdout: str
    stderr: str
    seconds: float
    ray_started: bool
    result: Any = None  # the JSON value a probe function returned
    stopped: bool = False  # stopped once it had started Ray (see Launch.wait)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Launch:
    """One case process: `entry` (a console script name) with `argv`, or `call` ("module:function")
    with `kwargs`, run in `cwd`."""

    def __init__(self, cwd: Path, *, entry: str | None = None, argv: tuple[str, ...] = (), call: str | None = None,
                 kwargs: dict | None = None, fresh: bool = False, env: dict | None = None):
        self.cwd, self.entry, self.argv, self.call, self.kwargs = Path(cwd), entry, tuple(argv), call, kwargs or {}
        self.fresh = fresh
        self.logs = Path(tempfile.mkdtemp(prefix=".log-", dir=self.cwd.parent))  # beside the case's directory
        self.ray_tmp = Path(tempfile.mkdtemp(prefix="nr", dir="/tmp"))  # short: Ray's socket paths are limited
        self.env = {"RAY_TMPDIR": str(self.ray_tmp), **(env or {})}
        self._proc: Any = None
        self._t0 = 0.0

    def start(self) -> "Launch":
        out, err = self.logs / "stdout", self.logs / "stderr"
        self._t0 = time.perf_counter()
        if self.fresh:
            assert self.entry, "fresh processes run console scripts"
            with open(out, "wb") as o, open(err, "wb") as e:
                self._proc = subprocess.Popen(
                    [sys.executable, "-c", targets.bootstrap(self.entry), *self.argv], cwd=self.cwd,
                    env={**os.environ, **self.env}, stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                    start_new_session=True)
        else:
            spec = {"cwd": str(self.cwd), "env": self.env, "stdout": str(out), "stderr": str(err),
                    "result": str(self.logs / "result.json")}
            spec.update({"entry": self.entry, "argv": list(self.argv)} if self.entry else
                        {"call": self.call, "kwargs": self.kwargs})
            self._proc = _forkserver().Process(target=child.main, args=(spec,), daemon=False)
            self._proc.start()
        return self

    @property
    def pid(self) -> int:
        return self._proc.pid

    def running(self) -> bool:
        return self._proc.poll() is None if self.fresh else self._proc.is_alive()

    def send(self, sig: int) -> None:
        """A signal to the case process itself (the driver), by its id."""
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def send_group(self, sig: int) -> None:
        """A signal to the process group of a fresh process (what Ctrl-C in a terminal does)."""
        assert self.fresh, "only fresh processes lead their own group"
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def ray_started(self) -> bool:
        return any(self.ray_tmp.glob("**/session_*"))

    def wait(self, timeout: float, stop_at_ray: bool = False) -> Capture:
        """Wait up to `timeout` s; a process still running then is killed (exit None). With
        `stop_at_ray`, a process is stopped as soon as it has started Ray (`Capture.stopped`): for a
        case whose verdict that settles, the rest of the run is time spent for nothing."""
        deadline = self._t0 + timeout
        stopped = False
        while self.running() and time.perf_counter() < deadline:
            if stop_at_ray and self.ray_started():
                stopped = True
                break
            time.sleep(0.05)
        hung = self.running() and not stopped
        if self.running():
            self.send(signal.SIGKILL)
        if self.fresh:
            code = self._proc.wait()
        else:
            self._proc.join()
            code = self._proc.exitcode
        seconds = time.perf_counter() - self._t0
        ray_started = self.ray_started()
        end_processes_of(self.ray_tmp)
        shutil.rmtree(self.ray_tmp, ignore_errors=True)
        result_file = self.logs / "result.json"
        result = json.loads(result_file.read_text()) if result_file.is_file() else None
        cap = Capture(None if hung or stopped else code, _read(self.logs / "stdout"), _read(self.logs / "stderr"),
                      seconds, ray_started, result, stopped)
        shutil.rmtree(self.logs, ignore_errors=True)
        return cap


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def run(cwd: Path, timeout: float, stop_at_ray: bool = False, **launch: Any) -> Capture:
    return Launch(cwd, **launch).start().wait(timeout, stop_at_ray)


def processes_of(ray_tmp: Path) -> list[psutil.Process]:
    """Processes started for one case: they name its RAY_TMPDIR on their command line or in their
    environment (Ray's daemons and workers both do)."""
    marker = str(ray_tmp)
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        if p.pid == os.getpid():
            continue
        try:
            if any(marker in a for a in p.info["cmdline"] or []) or p.environ().get("RAY_TMPDIR") == marker:
                found.append(p)
        except psutil.Error:
            continue
    return found


def end_processes_of(ray_tmp: Path, grace: float = 3.0) -> None:
    """End what a case left running (SIGTERM, then SIGKILL after `grace` s), each process by its id."""
    family = {q for p in processes_of(ray_tmp) for q in [p, *_quietly(p.children, [], recursive=True)]}
    for p in family:
        _quietly(p.terminate)
    for p in psutil.wait_procs(list(family), timeout=grace)[1]:
        _quietly(p.kill)


def _quietly(fn, default=None, **kwargs):
    """fn(**kwargs), or `default` when the process has gone meanwhile."""
    try:
        return fn(**kwargs)
    except psutil.Error:
        return default
