"""`nnts-ray-dashboard --runs DIR`: serve the Streamlit dashboard over a runs directory (localhost by default).

The runs directory reaches the app through the NNTS_RAY_RUNS environment variable; the app reads nothing
outside it. The process is replaced by `python -m streamlit run`, so signals reach Streamlit directly.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import Sequence

import dashboard


PROG = "nnts-ray-dashboard"


class _Parser(argparse.ArgumentParser):
    """Bad arguments end in one line (argparse would print its usage block first)."""

    def error(self, message: str):
        refuse(message)


def refuse(message: str):
    print(f"{PROG}: error: {message} (see {PROG} --help)", file=sys.stderr)
    sys.exit(2)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _Parser(prog=PROG, description="Serve the nnts_ray dashboard over a runs directory.")
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
        "--client.toolbarMode", "viewer",  # no Deploy / Rerun / Clear cache: a viewer of results, not an editor
    ]


def check_bind(port: int, address: str) -> None:
    """Refuse an address this machine does not have or a port in use — in one line, before Streamlit
    starts (it would print a traceback)."""
    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as s:
            s.bind(infos[0][4])
    except OSError as e:
        refuse(f"cannot serve on --address {address} --port {port}: {e.strerror or e}; give another --port or --address")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if not 1 <= args.port <= 65535:
        refuse(f"--port {args.port} is not allowed; give a port in 1..65535")
    runs = args.runs.resolve()
    if not runs.is_dir():
        refuse(f"--runs {str(args.runs)!r} is not a directory ({runs}); give an existing runs directory")
    check_bind(args.port, args.address)
    command = streamlit_command(args.port, args.address)
    os.execve(command[0], command, {**os.environ, dashboard.RUNS_ENV: str(runs)})


if __name__ == "__main__":
    main()
