"""Carrying out the cases: one workspace per case, the shared finished base run, and scheduling
that keeps a 2-core machine busy without drowning it (many cheap forked cases at once, few that
start Ray, and the ones that may hang started at once so their waiting overlaps everything else)."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnts_ray.reliability import observe
from nnts_ray.reliability.model import (
    CLI_TIMEOUT, Case, Cli, Observation, Outcome, Refused, Scenario, Workspace, outcome,
)
from nnts_ray.reliability.runner import BASE_CAPTURE, Capture, run


def select(cases: list[Case], only: str | None) -> list[Case]:
    """Cases whose group or id matches one of the comma-separated patterns (exact, prefix or glob)."""
    if not only:
        return cases
    patterns = [p.strip() for p in only.split(",") if p.strip()]
    return [c for c in cases if any(c.group == p or c.id == p or c.id.startswith(p.rstrip("/") + "/")
                                    or fnmatch.fnmatchcase(c.id, p) for p in patterns)]


def _slug(case_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", case_id)[:80]


@dataclass
class Base:
    """The finished base run every damaged-file, resume and fault case is compared with."""

    path: Path
    cache: Path
    tables: dict[str, Any]
    error: str | None = None


class Harness:
    def __init__(self, jobs: int = 4, heavy: int = 2, root: Path | None = None, log=None,
                 wait_for_end: bool = False):
        self.root = Path(root or tempfile.mkdtemp(prefix="nnts-rel-", dir="/tmp"))
        self.jobs, self.heavy_jobs = jobs, heavy
        self._busy = self._busy_heavy = 0  # case processes (and of those, heavy ones) running now
        self.base: Base | None = None
        self._base_ready = threading.Event()
        self._scenarios: dict[str, Future] = {}
        self._lock = threading.Lock()
        self._t0 = time.perf_counter()
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.wait_for_end = wait_for_end  # else a refusal case that starts Ray is stopped there

    # -------------------------------------------------------------- the base run

    def build_base(self) -> None:
        """`nnts-ray` with the base overrides into <root>/base: run, trained-model cache, tables."""
        ws = Workspace(self.root / "base")
        self.base = Base(ws.run, ws.cache, {}, "did not finish")
        try:
            ws.root.mkdir(parents=True, exist_ok=True)
            cap = run(ws.root, CLI_TIMEOUT, entry="nnts-ray", argv=Cli().command(ws))
            (ws.root / BASE_CAPTURE).write_text(json.dumps(dataclasses.asdict(cap)))  # judged as a healthy run too
            error = None if cap.exit == 0 else f"exit {cap.exit}: {observe.error_line(cap.stdout, cap.stderr)}"
            tables = observe.run_tables(ws.run) if error is None else {}
            if error is None and any(isinstance(t, str) for t in tables.values()):
                error = f"unreadable tables: {[k for k, t in tables.items() if isinstance(t, str)]}"
            self.base = Base(ws.run, ws.cache, tables, error)
            self.log(f"[{self._now()}] base run: {'ok' if error is None else error} ({cap.seconds:.0f} s)")
        finally:  # cases waiting for it must never wait forever
            self._base_ready.set()

    # -------------------------------------------------------------- one case

    def workspace(self, case: Case) -> Workspace:
        name = case.act.shared if isinstance(case.act, Scenario) and case.act.shared else _slug(case.id)
        return Workspace(self.root / "cases" / name, self.base.path if self.base and case.needs_base else None)

    def _prepare(self, case: Case, ws: Workspace):
        ws.root.mkdir(parents=True, exist_ok=True)
        ws.cache.mkdir(exist_ok=True)
        if ws.base_run is not None:  # the trained model, so that no case trains it again
            for f in self.base.cache.iterdir():
                if f.is_file() and not (ws.cache / f.name).exists():
                    os.link(f, ws.cache / f.name)
        return case.setup(ws) if case.setup else None

    def _carry_out(self, case: Case, ws: Workspace) -> Observation:
        """Setup, act, undo the setup; what the case did."""
        undo = self._prepare(case, ws)
        try:
            return self._act(case, ws)
        finally:
            if undo:
                undo()

    def _shared(self, case: Case, ws: Workspace) -> Observation:
        """The one execution of a shared scenario (the first case to arrive carries it out)."""
        act = case.act
        with self._lock:
            future = self._scenarios.get(act.shared)
            owner = future is None
            if owner:
                future = self._scenarios[act.shared] = Future()
        if owner:
            try:
                future.set_result(self._carry_out(case, ws))
            except BaseException as e:  # noqa: BLE001 — every case of the scenario reports it
                future.set_exception(e)
        result = future.result()
        return result[act.pick] if act.pick else result

    def _act(self, case: Case, ws: Workspace) -> Any:
        act = case.act
        if isinstance(act, Scenario):
            return act.fn(ws)
        before = observe.snapshot(ws.root)
        if isinstance(act, Cli):
            stop = not self.wait_for_end and isinstance(case.expect, Refused) and not case.expect.ray and not act.waits
            cap = run(ws.root, act.timeout, stop, entry=act.entry, argv=act.command(ws), fresh=act.fresh)
            obs = Observation(capture=cap)
        else:
            kwargs = {k: ws.fill(v) if isinstance(v, str) else v for k, v in act.kwargs.items()}
            obs = Observation(capture=run(ws.root, act.timeout, call=act.target, kwargs=kwargs))
            if isinstance(obs.capture.result, dict):
                obs.facts.update(obs.capture.result)
                if "traceback" in obs.capture.result:
                    obs.traceback = bool(obs.capture.result["traceback"])
        obs.written = observe.changes(before, observe.snapshot(ws.root))
        return obs

    def execute(self, case: Case) -> Outcome:
        if case.needs_base:
            self._base_ready.wait()
            if self.base.error:
                reason = f"not run: the base run failed ({self.base.error})"
                return Outcome(case, "—", "", False, None, None, 0.0, "", [reason])
        ws = self.workspace(case)
        try:
            shared = isinstance(case.act, Scenario) and case.act.shared
            obs = self._shared(case, ws) if shared else self._carry_out(case, ws)
            for cap in [obs.capture, *obs.facts.values()]:  # judged without the scratch paths (their names
                if isinstance(cap, Capture):               # repeat the case's, e.g. "truncated")
                    cap.stdout, cap.stderr = _short(cap.stdout, ws, self.root), _short(cap.stderr, ws, self.root)
            if case.compare:
                obs.tables = observe.compare_tables(self.base.tables, observe.run_tables(ws.root / case.compare))
            result = outcome(case, obs)
            if case.describe:
                result.notes = _short(case.describe(ws), ws, self.root)
            result.problems = [_short(p, ws, self.root) for p in result.problems]
        except Exception as e:  # noqa: BLE001 — a harness failure is reported on the case, never hidden
            result = Outcome(case, "—", f"harness error: {type(e).__name__}: {e}", False, None, None, 0.0, "",
                             [f"harness error: {type(e).__name__}: {e}"])
        self.log(f"[{self._now()}] {'ok        ' if result.ok else 'MISBEHAVED'} {case.id} ({result.seconds:.1f} s)"
                 + ("" if result.ok else f": {'; '.join(result.problems)[:160]}"))
        return result

    # -------------------------------------------------------------- all of them

    def run(self, cases: list[Case]) -> list[Outcome]:
        """Every case (the result in catalog order). Started in this order as slots free up: the ones
        that may sit waiting (outside the slots), the heavy ones, then the rest; a case that needs the
        base run once it is there. The base run itself holds a heavy slot."""
        pending = sorted(cases, key=lambda c: (not _waits(c), not c.heavy, c.needs_base))
        base_started = not any(c.needs_base for c in cases)
        if base_started:
            self._base_ready.set()
        futures: dict[str, Future] = {}
        scenarios: set[str] = set()  # shared scenarios under way: their other cases wait for the result
        with ThreadPoolExecutor(max_workers=len(cases) + 1) as pool:
            while pending:
                if not base_started and self._take(heavy=True):
                    base_started = True
                    pool.submit(self._release_after, self.build_base, True)
                for c in list(pending):
                    key = c.act.shared if isinstance(c.act, Scenario) else None
                    done = key is not None and key in self._scenarios and self._scenarios[key].done()
                    if (c.needs_base and not self._base_ready.is_set()) or (key in scenarios and not done):
                        continue
                    heavy = c.heavy and not done
                    if _waits(c) or self._take(heavy):
                        pending.remove(c)
                        if key is not None:
                            scenarios.add(key)
                        futures[c.id] = pool.submit(self._release_after, lambda c=c: self.execute(c),
                                                    heavy, not _waits(c))
                time.sleep(0.05)
            return [futures[c.id].result() for c in cases]

    def _take(self, heavy: bool) -> bool:
        """A slot (and a heavy one) if free."""
        with self._lock:
            if self._busy >= self.jobs or (heavy and self._busy_heavy >= self.heavy_jobs):
                return False
            self._busy += 1
            self._busy_heavy += heavy
            return True

    def _release_after(self, fn, heavy: bool, slotted: bool = True):
        try:
            return fn()
        finally:
            if slotted:
                with self._lock:
                    self._busy -= 1
                    self._busy_heavy -= heavy

    def seconds(self) -> float:
        return time.perf_counter() - self._t0

    def _now(self) -> str:
        return f"{self.seconds():6.1f}s"

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _short(text: str, ws: Workspace, root: Path) -> str:
    """Scratch paths as <ws> (the case's directory) and <tmp> (the harness's)."""
    return text.replace(str(ws.root), "<ws>").replace(str(root), "<tmp>")


def _waits(case: Case) -> bool:
    """May sit idle until its timeout (possible hangs): started at once, outside the slots."""
    return isinstance(case.act, Cli) and case.act.waits
