"""nnts-ray-dashboard: the command it execs, the environment it passes, its error for a bad --runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import dashboard
from nnts_ray import dashboard_cli


def test_main_execs_streamlit_headless_on_localhost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(dashboard_cli.os, "execve", lambda path, argv, env: calls.append((path, argv, env)))
    dashboard_cli.main(["--runs", str(tmp_path), "--port", "8600"])
    ((path, argv, env),) = calls
    assert path == sys.executable and argv[1:5] == ["-m", "streamlit", "run", str(dashboard.APP)]
    options = dict(zip(argv[5::2], argv[6::2]))
    assert options == {"--server.headless": "true", "--server.port": "8600", "--server.address": "127.0.0.1", "--browser.gatherUsageStats": "false"}
    assert env[dashboard.RUNS_ENV] == str(tmp_path.resolve())


def test_missing_runs_directory_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    done = subprocess.run([sys.executable, "-m", "nnts_ray.dashboard_cli", "--runs", str(missing)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "does not exist" in done.stderr and str(missing) in done.stderr
