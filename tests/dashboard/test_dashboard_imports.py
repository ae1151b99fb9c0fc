"""The dashboard opens fast because it never imports torch, ray or faiss — checked in a fresh interpreter
after every page has run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fakerun import RUNS

from dashboard import RUNS_ENV

PROBE = """
import sys
sys.path.insert(0, {tests!r})
from pagetest import PAGES, open_page
for page in PAGES:
    assert not open_page(page, {run!r}).exception, page
import dashboard.cli, dashboard.report
heavy = sorted(m for m in ("torch", "ray", "faiss") if m in sys.modules)
assert not heavy, heavy
"""


def test_no_heavy_imports_after_every_page(runs_root: Path) -> None:
    code = PROBE.format(tests=str(Path(__file__).parent), run=RUNS["sweep"])
    env = {RUNS_ENV: str(runs_root), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
