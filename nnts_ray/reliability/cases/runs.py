"""Finished and unfinished runs under attack: every kind of file of a finished run damaged,
truncated or replaced and the same configuration run again; activations of an earlier run that look
right and are not; and faults — the driver or a search worker killed mid-run, Ctrl-C, two runs on one
run_dir at once, a failed run resumed after its input was fixed. Work already finished must survive
(rows lost 0, tables equal to a clean run's); what is damaged must be redone, and said."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Callable

import polars as pl

from nnts_ray.reliability import files as f
from nnts_ray.reliability.model import (
    CLI_TIMEOUT, Case, Check, Cli, Completes, Observation, Refused, Scenario, Workspace,
)
from nnts_ray.reliability.observe import changes, has_traceback, snapshot
from nnts_ray.reliability.runner import Capture, Launch, processes_of, run

REDONE = r"redo|redone|re-?ran|recomput|damaged|corrupt|truncat|mismatch|digest|verif"
PART = "neighbours/model=lenet5/layer={layer}/part-0000{i}.parquet"
MARKERS = "_state/neighbours/lenet5__{layer}*"


def _finished(name: str, tried: str, *damages: f.Damage, expect=None, issue: bool = False) -> Case:
    """The base run copied, damaged, then the same configuration run on it again."""
    expect = expect or Completes(says=REDONE, says_what="what was redone")
    return Case(f"finished/{name}", "finished", tried, Cli(), expect, setup=f.copy_of_base("run", *damages),
                needs_base=True, compare="run", in_issue=issue)


def _reuse(name: str, tried: str, damage: f.Damage, issue: bool = False) -> Case:
    """An earlier finished run under paths.runs_root whose activations were tampered with; a new run
    of the same data and model must not trust them."""
    return Case(f"reuse/{name}", "reuse", tried,
                Cli(("run_dir={ws}/runs/new", "paths.runs_root={ws}/runs")),
                Completes(says=r"skip|not reus|digest|mismatch|verif", says_what="that the earlier file was skipped"),
                setup=f.copy_of_base("runs/earlier", damage), needs_base=True, compare="runs/new", in_issue=issue,
                describe=nnts_r2_r3)


def nnts_r2_r3(ws: Workspace) -> str:
    """NNTS(R2, R3) at k = 5 of the new run against the clean base run (the issue's example)."""
    def value(run: Path) -> float | None:
        path = run / "metrics" / "nnts.parquet"
        if not path.is_file():
            return None
        t = pl.read_parquet(path).filter(k=5, layer_a="R2", layer_b="R3")
        return t["jaccard"][0] if t.height else None

    clean, got = value(ws.base_run), value(ws.root / "runs" / "new")
    return "" if got is None else f"NNTS(R2, R3) at k=5: clean {clean:.3f}, this run {got:.3f}"


# ------------------------------------------------------------------ scenarios


def _until(predicate: Callable[[], object], timeout: float, interval: float = 0.01) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def _start(ws: Workspace, argv: tuple[str, ...] = ()) -> Launch:
    return Launch(ws.root, entry="nnts-ray", argv=Cli(argv).command(ws), fresh=True).start()


def _parts_done(ws: Workspace) -> int:
    return len(list((ws.run / "_state" / "neighbours").glob("*__part-*.done")))


def interrupt_driver(sig: int, group: bool = False) -> Callable[[Workspace], Observation]:
    """Send `sig` to the driver (`group`: to its process group, as Ctrl-C does) once three neighbour
    parts are finished, then run the same command again: the second run must finish the work and
    equal a clean run."""

    def scenario(ws: Workspace) -> Observation:
        first = _start(ws)
        hit = _until(lambda: _parts_done(ws) >= 3 or not first.running(), CLI_TIMEOUT)
        sent = bool(hit) and first.running()
        first.send_group(sig) if group else first.send(sig)
        interrupted = first.wait(30)
        again = run(ws.root, CLI_TIMEOUT, entry="nnts-ray", argv=Cli().command(ws), fresh=True)
        tb = has_traceback(interrupted.output) or has_traceback(again.output)
        return Observation(capture=again, facts={"interrupted": interrupted, "signal_sent": sent}, traceback=tb)

    return scenario


def kill_search_worker(ws: Workspace) -> Observation:
    """SIGKILL a search actor's process during the search stage; Ray restarts it and the run must end
    equal to a clean run. The actor is matched by its process title for its whole life (`ray::ShardSearcher`,
    `.search_part` while a task runs), not only while a task runs: on a fast machine a small run's tasks
    last milliseconds and polling for them would make the fault land by chance."""
    launch = _start(ws)

    def searching():
        if not launch.running():
            return True
        for p in processes_of(launch.ray_tmp):
            try:
                if p.cmdline() and p.cmdline()[0].startswith("ray::ShardSearcher"):
                    return p
            except Exception:  # noqa: BLE001 — a process that ended meanwhile
                continue
        return None

    victim = _until(searching, CLI_TIMEOUT)
    killed = victim is not True and victim is not None
    if killed:
        victim.kill()
    cap = launch.wait(CLI_TIMEOUT)
    return Observation(capture=cap, facts={"worker_killed": killed})


def two_runs_one_dir(ws: Workspace) -> Observation:
    """A second run of the same configuration on the same run_dir while the first is running."""
    first = _start(ws)
    _until(lambda: (ws.run / "manifest.json").is_file() or not first.running(), CLI_TIMEOUT)
    second = _start(ws)
    cap2 = second.wait(CLI_TIMEOUT)
    cap1 = first.wait(CLI_TIMEOUT)
    tb = has_traceback(cap1.output) or has_traceback(cap2.output)
    return Observation(capture=cap2, facts={"first": cap1}, traceback=tb)


def _two_runs_judged(obs: Observation) -> list[str]:
    first: Capture = obs.facts["first"]
    second = [f"second run: {p}" for p in Refused(("run_dir", "pid")).judge(Observation(capture=obs.capture))]
    first_ok = [f"first run: {p}" for p in Completes().judge(Observation(capture=first, tables=obs.tables))]
    return second + first_ok


NAN_ARGV = ("dataset=parquet", "dataset.root={data}/images.parquet")


def nonfinite_then_fixed(ws: Workspace) -> dict[str, Observation]:
    """A dataset whose images hold NaN (non-finite activations), then the same file fixed in place
    and the same command again (the run's fingerprint is unchanged, so it resumes)."""
    cmd = Cli(NAN_ARGV).command(ws)
    before = snapshot(ws.root)
    refused = run(ws.root, CLI_TIMEOUT, entry="nnts-ray", argv=cmd)
    written = changes(before, snapshot(ws.root))
    f.files({"data/images.parquet": f.image_table(tensors=True)})(ws)
    resumed = run(ws.root, CLI_TIMEOUT, entry="nnts-ray", argv=cmd)
    return {"refused": Observation(capture=refused, written=written), "resumed": Observation(capture=resumed)}


def _signal_reached(obs: Observation) -> list[str]:
    return [] if obs.facts.get("signal_sent", obs.facts.get("worker_killed")) else ["the run ended before the fault"]


def _recovers(obs: Observation) -> list[str]:
    """The fault happened; the run then ends like a clean one; no traceback from either process."""
    interrupted = obs.facts.get("interrupted")
    tb = ["traceback from the interrupted run"] if interrupted and has_traceback(interrupted.output) else []
    return _signal_reached(obs) + Completes().judge(obs) + tb


RECOVERS = Check(_recovers)


def cases() -> list[Case]:
    nan = f.files({"data/images.parquet": f.image_table(tensors=True, nan_rows=3)})
    return [
        _finished("rerun", "the same configuration again on its finished run", expect=Completes(
            says="already holds this finished run", says_what="that the run is finished", untouched=True)),
        _finished("status-running", "manifest status set back to running (an unfinished run resumed)",
                  f.edit_manifest(status="running"), expect=Completes()),
        _finished("state-removed", "every completion marker (_state/) removed", f.remove("_state"), expect=Completes()),
        _finished("part-truncated-markers-removed", "a neighbour part cut in half and its markers removed",
                  f.truncate(PART.format(layer="C1", i=1)), f.remove(MARKERS.format(layer="C1")), issue=True),
        _finished("part-truncated", "a neighbour part cut in half (marker kept)", f.truncate(PART.format(layer="C1", i=1)),
                  issue=True),
        _finished("part-removed", "a neighbour part deleted", f.remove(PART.format(layer="R1", i=2))),
        _finished("part-garbage", "a neighbour part overwritten with text",
                  f.overwrite(PART.format(layer="P0", i=0), "x")),
        _finished("part-replaced", "a neighbour part replaced by another probe point's", f.replace_with(
            PART.format(layer="C1", i=1), PART.format(layer="R2", i=1))),
        _finished("features-truncated", "activations features.npy of R2 cut in half",
                  f.truncate("activations/model=lenet5/layer=R2/features.npy"), issue=True),
        _finished("nnts-truncated", "metrics/nnts.parquet cut in half", f.truncate("metrics/nnts.parquet"), issue=True),
        _finished("nntp-removed", "metrics/nntp.parquet deleted", f.remove("metrics/nntp.parquet")),
        _finished("samples-truncated", "samples.parquet cut in half", f.truncate("samples.parquet")),
        _finished("weights-truncated", "models/lenet5.pt cut in half", f.truncate("models/lenet5.pt")),
        _finished("manifest-not-object", "manifest.json holding a JSON list", f.overwrite("manifest.json", "[1, 2]"),
                  expect=Refused(("manifest.json",)), issue=True),
        _finished("manifest-truncated", "manifest.json cut in half", f.truncate("manifest.json"),
                  expect=Refused(("manifest.json",))),
        Case("finished/other-config", "finished", "a finished run of another configuration (`k=[5,20]`) as run_dir",
             Cli(("k=[5,20]",)), Refused(("run_dir",)), setup=f.copy_of_base("run"), needs_base=True, compare="run"),
        Case("finished/other-config-failed", "finished", "a failed run of another configuration (`k=[5,20]`) as run_dir",
             Cli(("k=[5,20]",)), Refused(("run_dir",)), setup=f.copy_of_base("run", f.edit_manifest(status="failed")),
             needs_base=True),
        _reuse("permuted-features", "an earlier run's R2 features.npy with its rows permuted (same shape)",
               f.permute_rows("activations/model=lenet5/layer=R2/features.npy"), issue=True),
        _reuse("truncated-features", "an earlier run's R2 features.npy cut in half",
               f.truncate("activations/model=lenet5/layer=R2/features.npy"), issue=True),
        Case("faults/sigkill-driver", "faults", "SIGKILL the driver mid-search, then run the same command again",
             Scenario(interrupt_driver(signal.SIGKILL)), RECOVERS, needs_base=True, compare="run"),
        Case("faults/sigint-driver", "faults", "Ctrl-C (SIGINT) to the driver mid-search, then the same command again",
             Scenario(interrupt_driver(signal.SIGINT, group=True)), RECOVERS, needs_base=True, compare="run"),
        Case("faults/sigkill-search-worker", "faults", "SIGKILL a search actor's process mid-search",
             Scenario(kill_search_worker), RECOVERS, needs_base=True, compare="run"),
        Case("faults/two-runs-one-run_dir", "faults", "a second run on the same run_dir while the first runs",
             Scenario(two_runs_one_dir), Check(_two_runs_judged), needs_base=True, compare="run", in_issue=True),
        Case("faults/non-finite-activations", "faults", "a Parquet dataset whose images hold NaN",
             Scenario(nonfinite_then_fixed, shared="nonfinite", pick="refused"),
             Refused(("non-finite",), ray=True), setup=nan, needs_base=True, in_issue=True),
        Case("faults/resume-after-input-fixed", "faults", "the NaN images fixed in place, the same command again",
             Scenario(nonfinite_then_fixed, shared="nonfinite", pick="resumed"), Completes(like_base=False),
             setup=nan, needs_base=True, in_issue=True),
    ]
