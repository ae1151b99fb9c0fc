"""`nnts-ray-dashboard --runs DIR`: serve the Streamlit dashboard over a runs directory (localhost by default).

The runs directory reaches the app through the NNTS_RAY_RUNS environment variable; the app reads nothing
outside it. The process is replaced by `python -m streamlit run`, so signals reach Streamlit directly.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

import dashboard


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nnts-ray-dashboard", description="Serve the nnts_ray dashboard over a runs directory.")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="runs directory to read (default: runs)")
    parser.add_argument("--port", type=int, default=8501, help="port to serve on (default: 8501)")
    parser.add_argument("--address", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    return parser.parse_args(argv)


def streamlit_command(port: int, address: str) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(dashboard.APP),
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", address,
        "--browser.gatherUsageStats", "false",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    runs = args.runs.resolve()
    if not runs.is_dir():
        sys.exit(f"nnts-ray-dashboard: runs directory {str(args.runs)!r} does not exist ({runs}); give an existing one with --runs DIR")
    command = streamlit_command(args.port, args.address)
    os.execve(command[0], command, {**os.environ, dashboard.RUNS_ENV: str(runs)})


if __name__ == "__main__":
    main()
