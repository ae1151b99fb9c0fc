"""What runs inside a forked case process: the product's entry point or a probe function, with
output captured at the file-descriptor level (so Ray's, torch's and C++ lines are caught too) and
the exit status a console script would give.

A fork of a process that has only imported the product costs a fraction of a second instead of the
seconds an interpreter start and the imports take, and a case that hangs, crashes or starts Ray
harms only itself.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import traceback
from typing import Any

from nnts_ray.reliability import targets


def _redirect(spec: dict) -> None:
    os.chdir(spec["cwd"])
    os.environ.update(spec["env"])
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    for fd, path in ((1, spec["stdout"]), (2, spec["stderr"])):
        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, fd)
        os.close(out)


def exit_status(exc: BaseException | None) -> int:
    """The status the interpreter gives a script that ended with `exc` (None: returned)."""
    if exc is None:
        return 0
    if isinstance(exc, SystemExit):
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)
        return 1
    traceback.print_exception(exc)
    return 130 if isinstance(exc, KeyboardInterrupt) else 1


def main(spec: dict) -> None:
    """Run `spec["entry"]` with `spec["argv"]`, or call `spec["call"]` and write its JSON result."""
    _redirect(spec)
    error: BaseException | None = None
    try:
        if "entry" in spec:
            sys.argv = [spec["entry"], *spec["argv"]]
            targets.entry_point(spec["entry"])()
        else:
            result: Any = targets.resolve(spec["call"])(**spec.get("kwargs", {}))
            with open(spec["result"], "w") as f:
                json.dump(result, f, default=str)
    except BaseException as e:  # noqa: BLE001 — reported the way the interpreter would
        error = e
    code = exit_status(error)
    atexit._run_exitfuncs()  # what the interpreter runs at exit (Ray's shutdown among them)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
