"""The vocabulary of the harness: a `Case` (what a hostile user tries and what the product promises
for it), what was observed, and the verdict.

A case is declarative: an id, a group, one line saying what is tried, an optional `setup` that
writes files into the case's workspace, an `act` (a command line, an API call, a probe of the
dashboard, or a scripted scenario) and an `expect`. The harness carries it out and `judge` turns the
`Observation` into problems; no problems is "ok".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from nnts_ray.reliability import observe
from nnts_ray.reliability.runner import Capture

# The small finished run every case builds on: seconds to run, every stage exercised.
BASE = {"dataset": "synthetic", "dataset.synthetic.n": "300", "k": "[5,10]"}
CLI_TIMEOUT = 600.0  # a case still running then is killed and recorded as hung
HANG_TIMEOUT = 60.0  # resources that cannot be had must be refused well within this


@dataclass(frozen=True)
class Workspace:
    """A case's own directory (its working directory): `run` is its run_dir, `data` its input
    files, `cache` its model cache (hard links to the base run's trained model)."""

    root: Path
    base_run: Path | None = None  # the clean finished base run (read only: copy before damaging)

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def fill(self, text: str) -> str:
        """{ws} {run} {data} {cache} {base} replaced by paths; every other brace kept (Hydra lists)."""
        places = {"ws": self.root, "run": self.run, "data": self.data, "cache": self.cache, "base": self.base_run}
        return re.sub(r"\{(ws|run|data|cache|base)\}", lambda m: str(places[m.group(1)]), text)


Setup = Callable[[Workspace], Callable[[], None] | None]  # writes files; may return an undo (e.g. umount)


# ------------------------------------------------------------------ what is done


@dataclass(frozen=True)
class Cli:
    """A console script with `argv` (placeholders {ws} {run} {data} {cache}); with `base`, the base
    run's overrides, run_dir={run} and paths.cache_dir={cache} come first unless argv sets them."""

    argv: tuple[str, ...] = ()
    entry: str = "nnts-ray"
    base: bool = True
    fresh: bool = False  # a fresh interpreter instead of a fork (when the process itself is the subject)
    timeout: float = CLI_TIMEOUT
    waits: bool = False  # may sit idle until its timeout today (hangs): started at once, outside the slots

    def command(self, ws: Workspace) -> tuple[str, ...]:
        argv = [ws.fill(a) for a in self.argv]
        if not self.base:
            return tuple(argv)
        flags = 0  # leading options (-m, --cfg job) stay in front, as a user types them
        while flags < len(argv) and "=" not in argv[flags]:
            flags += 1
        keys = {a.lstrip("+~").split("=", 1)[0] for a in argv[flags:]}
        groups = {k for k in keys if "." not in k}
        base = {**BASE, "run_dir": str(ws.run), "paths.cache_dir": str(ws.cache)}
        kept = [f"{k}={v}" for k, v in base.items() if k not in keys and k.split(".", 1)[0] not in groups]
        return (*argv[:flags], *kept, *argv[flags:])


@dataclass(frozen=True)
class Call:
    """A probe function ("module:function", returns JSON) run in a forked process: API calls,
    dashboard pages."""

    target: str
    kwargs: dict = field(default_factory=dict)
    timeout: float = 120.0


@dataclass(frozen=True)
class Scenario:
    """A scripted sequence (signals, two runs at once, resume after a fix): `fn(ws) -> Observation`.
    Cases with the same `shared` key judge one execution (e.g. the healthy default run); when `fn`
    returns several observations by name, `pick` names the one a case judges."""

    fn: Callable[[Workspace], Any]
    shared: str | None = None
    pick: str | None = None


Act = Cli | Call | Scenario


# ------------------------------------------------------------------ what was seen


@dataclass
class Observation:
    capture: Capture | None = None  # the (last) case process
    written: list[str] = field(default_factory=list)  # workspace changes: +created ~changed -removed
    tables: observe.TableDiff | None = None  # the case's run against the clean base run
    facts: dict[str, Any] = field(default_factory=dict)  # scenario findings (numbers, exceptions, …)
    traceback: bool | None = None  # None: read from the output


# ------------------------------------------------------------------ what is promised


def _written(obs: Observation) -> list[str]:
    if not obs.written:
        return []
    shown = ", ".join(p for p in obs.written[:3])
    return [f"{len(obs.written)} paths written ({shown}{', …' if len(obs.written) > 3 else ''})"]


def _process(obs: Observation, want_exit: int) -> list[str]:
    cap = obs.capture
    assert cap is not None
    if cap.stopped:
        return [f"not refused before Ray started ({cap.seconds:.0f} s; stopped there)"]
    if cap.exit is None:
        return [f"hung > {cap.seconds:.0f} s (killed)"]
    problems = []
    if cap.exit != want_exit:
        problems.append("accepted: ran to exit 0" if cap.exit == 0 else f"exit {cap.exit}")
    if observe.has_traceback(cap.output):
        problems.append("traceback")
    return problems


@dataclass(frozen=True)
class Refused:
    """Bad input: exit 2, exactly one line that says error and names `mentions` (every one, or with
    `any_of` at least one: a config value is named by its key or by the value), no traceback,
    nothing written, Ray not started (`ray`: the check needs activations, so Ray may start, but
    nothing may be left behind)."""

    mentions: tuple[str, ...] = ()
    ray: bool = False
    any_of: bool = False

    def judge(self, obs: Observation) -> list[str]:
        cap = obs.capture
        problems = _process(obs, 2)
        if cap.exit is None:
            return problems + _written(obs)
        out = observe.lines(cap.output)
        line = observe.error_line(cap.stdout, cap.stderr)
        if len(out) != 1:
            problems.append(f"{len(out)} lines of output")
        if cap.exit != 0 and "error" not in line.lower():
            problems.append("no error line")
        missing = [m for m in self.mentions if not observe.mentions(line, m)]
        if missing and cap.exit != 0 and not (self.any_of and len(missing) < len(self.mentions)):
            problems.append(f"line does not name {(' or ' if self.any_of else ', ').join(map(repr, missing))}")
        if cap.ray_started and not self.ray and not cap.stopped:
            problems.append(f"Ray started ({cap.seconds:.0f} s)")
        return problems + _written(obs)


@dataclass(frozen=True)
class Completes:
    """A run that must end well: exit 0, no traceback; with `like_base`, its tables equal the clean
    base run's (rows lost 0); `says`: a regex some output line must match (e.g. what was redone)."""

    like_base: bool = True
    says: str | None = None
    says_what: str = ""
    untouched: bool = False  # nothing in the workspace may change (a finished run only reported)

    def judge(self, obs: Observation) -> list[str]:
        problems = _process(obs, 0)
        if self.untouched:
            problems += _written(obs)
        if self.like_base:
            if obs.tables is None:
                problems.append("no run to compare")
            elif not obs.tables.preserved:
                problems.append("; ".join(obs.tables.damaged[:2]) + (" …" if len(obs.tables.damaged) > 2 else ""))
        if self.says and obs.capture and not re.search(self.says, obs.capture.output, re.I | re.M):
            problems.append(f"does not say {self.says_what or self.says}")
        return problems


@dataclass(frozen=True)
class Raises:
    """An API call with bad arguments: a ValueError or TypeError raised on purpose, whose one-line
    message names `mentions`; anything else escaping (IndexError, StopIteration, numpy failing
    inside the product, …) is a traceback."""

    mentions: tuple[str, ...] = ()

    def judge(self, obs: Observation) -> list[str]:
        f = obs.facts
        if obs.capture is not None and obs.capture.exit != 0:
            return [f"probe process ended with exit {obs.capture.exit}"]
        if not f.get("raised"):
            return [f"accepted: {f.get('returned', '')}".strip()]
        problems = []
        if f["traceback"]:
            problems.append(f"{f['raised']} escapes (a traceback)")
        if "\n" in f["message"].strip():
            problems.append("message of several lines")
        missing = [m for m in self.mentions if not observe.mentions(f["message"], m)]
        if missing:
            problems.append(f"message does not name {', '.join(map(repr, missing))}")
        return problems


@dataclass(frozen=True)
class Check:
    """A promise checked by a function of the observation, returning its problems."""

    fn: Callable[[Observation], list[str]]
    what: str = ""

    def judge(self, obs: Observation) -> list[str]:
        return self.fn(obs)


Expect = Refused | Completes | Raises | Check


@dataclass(frozen=True)
class Case:
    id: str
    group: str
    tried: str  # what a hostile user does, one line for the table
    act: Act
    expect: Expect
    setup: Setup | None = None
    needs_base: bool = False  # setup copies the base run, or the command needs its warm model cache
    compare: str | None = None  # relative run directory whose tables are compared with the base run
    in_issue: bool = False  # listed as misbehaving in issue 12
    describe: Callable[[Workspace], str] | None = None  # extra facts for the reason (e.g. what a run computed)

    @property
    def heavy(self) -> bool:
        """Expected to run Ray (or to sit waiting): scheduled with fewer at a time."""
        return isinstance(self.act, Scenario) or isinstance(self.expect, Completes) or (
            isinstance(self.expect, Refused) and self.expect.ray)


@dataclass
class Outcome:
    """One row of RELIABILITY.md."""

    case: Case
    exit: str  # exit code, "hung > N s" or "—"
    line: str
    traceback: bool
    preserved: bool | None
    rows_lost: int | None
    seconds: float
    work: str  # files written / Ray started before the refusal
    problems: list[str]
    notes: str = ""  # facts beside the verdict (e.g. the numbers a wrongly accepted run computed)

    @property
    def ok(self) -> bool:
        return not self.problems


def outcome(case: Case, obs: Observation) -> Outcome:
    cap = obs.capture
    problems = case.expect.judge(obs)
    if cap is None or (isinstance(case.act, Call) and cap.exit == 0):  # a probe: its report is the result
        exit_text, line = "—", obs.facts.get("line", "")
    elif cap.stopped:
        exit_text, line = "stopped at Ray start", observe.error_line(cap.stdout, cap.stderr)
    elif cap.exit is None:
        exit_text, line = f"hung > {cap.seconds:.0f} s", observe.error_line(cap.stdout, cap.stderr)
    else:
        exit_text, line = str(cap.exit), obs.facts.get("line") or observe.error_line(cap.stdout, cap.stderr)
    traceback = obs.traceback if obs.traceback is not None else bool(cap and observe.has_traceback(cap.output))
    work = []
    if obs.written:
        work.append(f"{len(obs.written)} paths")
    if cap is not None and cap.ray_started:
        work.append("Ray")
    return Outcome(
        case=case, exit=exit_text, line=line, traceback=traceback,
        preserved=None if obs.tables is None else obs.tables.preserved,
        rows_lost=None if obs.tables is None else obs.tables.rows_lost,
        seconds=cap.seconds if cap else obs.facts.get("seconds", 0.0), work=", ".join(work), problems=problems)
