"""RELIABILITY.md regenerated and checked (issue 12): every case of the harness behaves as promised
(no traceback, 0 rows lost, every verdict ok), and the committed table lists exactly the catalog.

    pytest -m reliability                         # everything (minutes: real runs, real Ray)
    pytest -m reliability -k finished             # only the cases selected here are run
    python -m nnts_ray.reliability --only finished   # the same outside pytest, with the table
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nnts_ray.reliability.cases import all_cases
from nnts_ray.reliability.harness import Harness
from nnts_ray.reliability.report import case_ids, markdown

pytestmark = [pytest.mark.reliability, pytest.mark.slow, pytest.mark.ray, pytest.mark.timeout(3600)]

CASES = all_cases()
COMMITTED = Path(__file__).resolve().parents[2] / "RELIABILITY.md"


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory):
    """The harness over the cases this session selected; the table written to a temp dir."""
    selected = {item.callspec.params["case_id"] for item in request.session.items
                if hasattr(item, "callspec") and "case_id" in item.callspec.params}
    cases = [c for c in CASES if c.id in selected] or CASES
    harness = Harness()
    try:
        results = harness.run(cases)
    finally:
        harness.cleanup()
    table = tmp_path_factory.mktemp("reliability") / "RELIABILITY.md"
    table.write_text(markdown(results, harness.seconds(), "pytest -m reliability"))
    return {o.case.id: o for o in results}, table


def test_committed_table_lists_exactly_the_catalog():
    assert case_ids(COMMITTED.read_text()) == [c.id for c in CASES], \
        "RELIABILITY.md is stale: python -m nnts_ray.reliability --out RELIABILITY.md"


def test_regenerated_table_lists_the_cases_run(outcomes):
    results, table = outcomes
    assert case_ids(table.read_text()) == list(results)


def test_no_traceback_and_no_rows_lost(outcomes):
    results, _ = outcomes
    assert [i for i, o in results.items() if o.traceback] == []
    assert {i: o.rows_lost for i, o in results.items() if o.rows_lost} == {}


@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_case_behaves(outcomes, case_id):
    o = outcomes[0][case_id]
    if not o.ok:
        pytest.fail(f"{o.case.tried}: {'; '.join(o.problems)} — exit {o.exit}, line {o.line!r}", pytrace=False)
