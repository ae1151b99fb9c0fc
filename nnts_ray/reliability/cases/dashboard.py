"""The dashboard pointed at a shared runs folder someone else also writes to: a run whose manifest
is wrong or leads outside the folder, a ?run= that climbs out of it, a broken table; and its command
line. Every page must keep working for the other runs, show problems as messages (never an
exception), read nothing outside --runs, and bind to 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

from nnts_ray.reliability import files as f
from nnts_ray.reliability import targets
from nnts_ray.reliability.model import Call, Case, Check, Cli, Observation, Refused, Scenario, Workspace
from nnts_ray.reliability.runner import Launch

PAGES = ("views/runs.py", "views/nnts.py", "views/nntp.py", "views/layers.py", "views/models.py", "views/samples.py")
SECRET = "SECRET-OUTSIDE-7f3a"  # written only outside the runs folder: it must never be shown


def _texts(at) -> list[str]:
    """Everything a page shows as text, tables included."""
    out = []
    kinds = ("markdown", "caption", "text", "header", "subheader", "title", "error", "warning", "info", "json", "code")
    for kind in kinds:
        out += [str(e.value) for e in getattr(at, kind, [])]
    for frame in list(at.dataframe) + list(at.table):
        try:
            out.append(frame.value.to_string())
        except Exception:  # noqa: BLE001 — a table whose value cannot be rendered as text
            continue
    return out


def pages(runs: str, run: str | None = None) -> dict:
    """Open every page with AppTest (as a browser following ?run=<run> would) and report per page:
    exceptions shown, error messages, and whether SECRET appears."""
    from streamlit.testing.v1 import AppTest

    os.environ[targets.resolve(targets.DASHBOARD_RUNS_ENV)] = runs
    report = {}
    for page in PAGES:
        at = AppTest.from_file(str(targets.resolve(targets.DASHBOARD_APP)), default_timeout=120)
        if run is not None:
            at.query_params["run"] = run
        at.run()
        at = at.switch_page(page).run()
        texts = _texts(at)
        report[page] = {"exceptions": [str(e.value).splitlines()[0] for e in at.exception],
                        "messages": [str(e.value) for e in list(at.error) + list(at.warning)],
                        "secret": any(SECRET in t for t in texts)}
    try:
        catalog = targets.resolve(targets.CATALOG_SCAN)(runs)
        rows = catalog.select("run_dir", "status").rows()
        report["catalog"] = {"rows": rows, "secret": SECRET in str(catalog.to_dicts())}
    except Exception as e:  # noqa: BLE001 — the catalog failing on one run is the finding
        report["catalog"] = {"rows": [], "secret": False, "exception": f"{type(e).__name__}: {e}"}
    return report


def _page_problems(obs: Observation, refused: str | None = None, unreadable: str | None = None) -> list[str]:
    r = obs.capture.result if obs.capture else None
    if not r:
        return [f"probe failed (exit {obs.capture.exit if obs.capture else '—'}): "
                f"{(obs.capture.stderr.strip().splitlines() or [''])[-1] if obs.capture else ''}"]
    shown = {page: e for page, e in r.items() if page != "catalog"}
    problems = [f"{page.split('/')[-1]}: exception {e['exceptions'][0]!r}"
                for page, e in shown.items() if e["exceptions"]]
    if any(e["secret"] for e in r.values()):
        problems.append("shows the content of a file outside --runs")
    if "exception" in r["catalog"]:
        problems.append(f"the run catalog raises {r['catalog']['exception']}")
    statuses = dict(map(tuple, r["catalog"]["rows"]))
    if "good" not in statuses:
        problems.append("the good run is not listed")
    if unreadable and statuses.get(unreadable) != "unreadable":
        problems.append(f"{unreadable!r} listed as {statuses.get(unreadable)!r}, not unreadable")
    if refused and not any(refused in m for e in shown.values() for m in e["messages"]):
        problems.append(f"no page says {refused!r} was refused")
    return problems


def _runs_folder(*extra) -> object:
    """runs/good (a copy of the base run) plus whatever `extra` adds below runs/."""
    return f.combine(f.copy_of_base("runs/good"), *extra)


def _outside_manifest(ws: Workspace) -> None:
    """runs/linked/manifest.json is a link to a manifest-like file outside the runs folder."""
    (ws.root / "outside").mkdir()
    fake = {"format": "nnts_ray/1", "status": "complete", "config": {"dataset": {"name": SECRET}}, "error": SECRET,
            "models": {SECRET: {}}, "stages": {}}
    (ws.root / "outside" / "manifest.json").write_text(json.dumps(fake))
    (ws.root / "runs" / "linked").mkdir(parents=True)
    os.symlink(ws.root / "outside" / "manifest.json", ws.root / "runs" / "linked" / "manifest.json")


def _app(name: str, tried: str, setup, run: str | None = None, issue: bool = False, **judge) -> Case:
    return Case(f"dashboard/{name}", "dashboard", tried, Call(f"{__name__}:pages", {"runs": "{ws}/runs", "run": run},
                                                               timeout=300),
                Check(lambda o: _page_problems(o, **judge)), setup=setup, needs_base=True, in_issue=issue)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(ws: Workspace) -> Observation:
    """Start `nnts-ray-dashboard --runs runs --port <free>`, read the addresses it listens on, stop it."""
    import psutil

    port = _free_port()
    (ws.root / "runs").mkdir(exist_ok=True)
    launch = Launch(ws.root, entry="nnts-ray-dashboard", argv=("--runs", str(ws.root / "runs"), "--port", str(port)),
                    fresh=True).start()
    deadline, addresses = time.monotonic() + 90, set()
    while time.monotonic() < deadline and launch.running() and not addresses:
        try:
            addresses = {c.laddr.ip for c in psutil.Process(launch.pid).net_connections(kind="inet")
                         if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
        except psutil.Error:
            pass
        time.sleep(0.2)
    launch.send(signal.SIGTERM)
    cap = launch.wait(20)
    return Observation(capture=cap, facts={"listening": sorted(addresses), "line": f"listening on {sorted(addresses)}"})


def _localhost_only(obs: Observation) -> list[str]:
    got = obs.facts["listening"]
    return [] if got == ["127.0.0.1"] else [f"listening on {got or 'nothing'} (want 127.0.0.1 only)"]


def cases() -> list[Case]:
    dash = "nnts-ray-dashboard"
    return [
        _app("run-param-escape", "`?run=../../etc` on every page", _runs_folder(), run="../../etc", refused="../../etc"),
        _app("run-param-absolute", "`?run=/etc` on every page", _runs_folder(), run="/etc", refused="/etc"),
        _app("manifest-config-oops", 'a run whose manifest says `"config": "oops"`, every page',
             _runs_folder(f.copy_of_base("runs/oops", f.edit_manifest(config="oops"))), unreadable="oops", issue=True),
        _app("manifest-config-oops-opened", 'the run with `"config": "oops"` opened by ?run=',
             _runs_folder(f.copy_of_base("runs/oops", f.edit_manifest(config="oops"))), run="oops", issue=True),
        _app("manifest-symlink-outside", "a run whose manifest.json links to a file outside --runs",
             _runs_folder(_outside_manifest), issue=True),
        _app("manifest-symlink-outside-opened", "that run opened by ?run=linked", _runs_folder(_outside_manifest),
             run="linked", issue=True),
        _app("manifest-garbage", "a run whose manifest.json is not JSON",
             _runs_folder(f.copy_of_base("runs/garbage", f.overwrite("manifest.json", "{{{ not json"))),
             unreadable="garbage"),
        _app("nnts-garbage", "a run whose metrics/nnts.parquet is text, opened",
             _runs_folder(f.copy_of_base("runs/badnnts", f.overwrite("metrics/nnts.parquet", "not parquet"))),
             run="badnnts"),
        Case("dashboard/binds-localhost", "dashboard", "`nnts-ray-dashboard --runs runs --port <free>`: where it listens",
             Scenario(serve), Check(_localhost_only)),
        Case("dashboard/--port 99999", "dashboard", "`nnts-ray-dashboard --port 99999`",
             Cli(("--runs", "{ws}", "--port", "99999"), entry=dash, base=False, timeout=60), Refused(("99999",)),
             in_issue=True),
        Case("dashboard/--port abc", "dashboard", "`nnts-ray-dashboard --port abc`",
             Cli(("--runs", "{ws}", "--port", "abc"), entry=dash, base=False, timeout=60), Refused(("abc",))),
        Case("dashboard/--runs missing", "dashboard", "`nnts-ray-dashboard --runs <no such dir>`",
             Cli(("--runs", "{ws}/nowhere"), entry=dash, base=False, timeout=60), Refused(("nowhere",))),
    ]
