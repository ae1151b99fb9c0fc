"""Fixtures: a runs directory written once per session (see fakerun.py), and the app's environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakerun import write_runs_root

from dashboard import RUNS_ENV


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fakerun.RUNS below one directory: a sweep, a single model, a running, a corrupt and an unreadable run."""
    root = tmp_path_factory.mktemp("runs")
    write_runs_root(root)
    return root


@pytest.fixture
def app_env(runs_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the dashboard at the session's runs directory."""
    monkeypatch.setenv(RUNS_ENV, str(runs_root))
    return runs_root
