"""nnts-ray-dashboard: the command it execs, the environment it passes, its error for a bad --runs."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

import dashboard
from dashboard import cli as dashboard_cli


def test_main_execs_streamlit_headless_on_localhost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(dashboard_cli.os, "execve", lambda path, argv, env: calls.append((path, argv, env)))
    dashboard_cli.main(["--runs", str(tmp_path), "--port", "8600"])
    ((path, argv, env),) = calls
    assert path == sys.executable and argv[1:5] == ["-m", "streamlit", "run", str(dashboard.APP)]
    options = dict(zip(argv[5::2], argv[6::2]))
    assert options == {"--server.headless": "true", "--server.port": "8600", "--server.address": "127.0.0.1", "--browser.gatherUsageStats": "false",
                       "--client.toolbarMode": "viewer"}  # no Deploy button
    assert env[dashboard.RUNS_ENV] == str(tmp_path.resolve())


def _refusal(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "dashboard.cli", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == "", done
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("nnts-ray-dashboard: error: "), done.stderr
    return done.stderr


def test_missing_runs_directory_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert "is not a directory" in _refusal("--runs", str(missing)) and str(missing) in _refusal("--runs", str(missing))


@pytest.mark.parametrize("args, says", [
    (("--port", "abc"), "invalid int value: 'abc'"),
    (("--port", "99999"), "--port 99999 is not allowed; give a port in 1..65535"),
    (("--port", "0"), "--port 0 is not allowed"),
])
def test_bad_port_is_one_line(tmp_path: Path, args, says) -> None:
    assert says in _refusal("--runs", str(tmp_path), *args)


def test_port_in_use_and_foreign_address_refused_before_streamlit(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert f"--port {port}: Address already in use" in _refusal("--runs", str(tmp_path), "--port", port)
    assert "cannot serve on --address 192.0.2.1" in _refusal("--runs", str(tmp_path), "--address", "192.0.2.1")
