"""The healthy default run, `nnts-ray` with no arguments in a fresh directory (digits, LeNet-5 trained
on the spot, k = 15 and 100): what it prints must hold no traceback and no error-level line, long
steps must show progress, and the manifest must account for the time they took."""

from __future__ import annotations

import json
import re

from nnts_ray.reliability import observe
from nnts_ray.reliability.model import Case, Check, Observation, Scenario, Workspace
from nnts_ray.reliability.runner import BASE_CAPTURE, Capture, run

RUN = "runs/lenet5-digits"  # the default run_dir below the working directory


def default_run(ws: Workspace) -> Observation:
    cap = run(ws.root, 900, entry="nnts-ray", fresh=True)
    manifest = ws.root / RUN / "manifest.json"
    facts = {"manifest": json.loads(manifest.read_text()) if manifest.is_file() else {},
             "work_left": (ws.root / RUN / "_work").exists()}
    return Observation(capture=cap, facts=facts)


def base_run(ws: Workspace) -> Observation:
    """The harness's own base run (synthetic data, n = 300): a second healthy run to observe."""
    saved = json.loads((ws.base_run.parent / BASE_CAPTURE).read_text())
    return Observation(capture=Capture(**saved))


def _clean_exit(obs: Observation) -> list[str]:
    cap = obs.capture
    problems = [] if cap.exit == 0 else [f"exit {cap.exit}"]
    if "NNTS (Jaccard)" not in cap.stdout:
        problems.append("no NNTS summary on stdout")
    if observe.has_traceback(cap.output):
        last = [ln for ln in observe.lines(cap.output) if re.search(r"\w+(Error|Exception):", ln)]
        problems.append(f"traceback ({last[0].strip()[:120] if last else 'see output'})")
    return problems


def _listed(kind: str, found: list[str]) -> list[str]:
    return [f"{len(found)} {kind} lines, e.g. {found[0].strip()[:140]!r}"] if found else []


def _training_progress(obs: Observation) -> list[str]:
    return [] if re.search(r"epoch\s*\d", obs.capture.output, re.I) else ["no progress line during training (epoch …)"]


def _training_counted(obs: Observation) -> list[str]:
    m = obs.facts["manifest"]
    trained = ((m.get("models") or {}).get("lenet5") or {}).get("weights", {}).get("seconds")
    stage = ((m.get("stages") or {}).get("models") or {}).get("seconds")
    if trained is None or stage is None:
        return [f"manifest lacks training seconds ({trained}) or the models stage ({stage})"]
    return [] if stage >= 0.9 * trained else [f"models stage {stage:.3f} s, training took {trained:.1f} s"]


def _search_progress(obs: Observation) -> list[str]:
    """The search reports one global count of parts done (probe-major queue), with an ETA."""
    lines = re.findall(r"neighbours \(.*?\): (\d+)/(\d+) parts(.*)", obs.capture.output)
    if not lines:
        return ["no search progress lines"]
    done = [int(d) for d, _, _ in lines]
    problems = [] if done == sorted(done) else ["part counts reported out of order"]
    if not any("ETA" in rest for _, _, rest in lines):
        problems.append("no ETA")
    return problems


def _work_removed(obs: Observation) -> list[str]:
    return [f"{RUN}/_work/ left after the run completed"] if obs.facts["work_left"] else []


def cases() -> list[Case]:
    act = Scenario(default_run, shared="healthy")
    checks = {
        "exit-0-no-traceback": ("exits 0 without a traceback", _clean_exit),
        "no-error-level-line": ("prints no error-level line",
                                lambda o: _listed("error-level", observe.error_level_lines(o.capture.output))),
        "no-warning-line": ("prints no warning line",
                            lambda o: _listed("warning", observe.warning_lines(o.capture.output))),
        "training-progress": ("shows progress while training", _training_progress),
        "training-counted": ("counts training in the models stage", _training_counted),
        "search-progress": ("reports search parts in order, with an ETA", _search_progress),
        "work-removed": ("removes _work/ when the run completes", _work_removed),
    }
    out = [Case(f"healthy/{name}", "healthy", f"`nnts-ray` (the default run) {what}", act, Check(fn), in_issue=True)
           for name, (what, fn) in checks.items()]
    small = Scenario(base_run, shared="base-run")
    return out + [
        Case("healthy/base-run-no-traceback", "healthy", "the base run (synthetic, n = 300) exits 0 without a traceback",
             small, Check(_clean_exit), needs_base=True, in_issue=True),
        Case("healthy/base-run-no-error-level-line", "healthy", "the base run prints no error-level line", small,
             Check(lambda o: _listed("error-level", observe.error_level_lines(o.capture.output))), needs_base=True,
             in_issue=True),
    ]
