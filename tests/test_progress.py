"""Progress lines in a log (not a terminal): the first step always gives an ETA, whatever the speed, and the
last gives the total time; in between at most one line per interval."""

import re

from nnts_ray.progress import Progress


def _lines(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


def test_first_step_reports_eta_even_when_fast(capsys):
    with Progress("neighbours (x)", total=5, unit="parts", tty=False) as p:
        for _ in range(5):
            p.advance()
    lines = _lines(capsys)
    assert len(lines) == 2, lines  # first step and last step; the middle ones fall inside the interval
    assert re.search(r"neighbours \(x\): 1/5 parts, ETA \d+m\d\ds$", lines[0]), lines[0]
    assert re.search(r"5/5 parts in \d+m\d\ds$", lines[1]), lines[1]


def test_resumed_task_first_step_counts_from_resume(capsys):
    with Progress("search", total=4, unit="parts", done_before=2, tty=False) as p:
        p.advance()
        p.advance()
    lines = _lines(capsys)
    assert "3/4 parts, ETA" in lines[0], lines
    assert lines[-1].endswith("(2 done before)"), lines


def test_single_step_task_logs_once(capsys):
    with Progress("one", total=1, tty=False) as p:
        p.advance()
    lines = _lines(capsys)
    assert len(lines) == 1 and "1/1 in" in lines[0], lines
