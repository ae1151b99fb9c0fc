"""The catalog: every case, grouped by what is tried (see each module's docstring)."""

from __future__ import annotations

from nnts_ray.reliability.model import Case


def all_cases() -> list[Case]:
    from nnts_ray.reliability.cases import api, config, dashboard, data, healthy, runs

    cases = [c for module in (config, data, runs, api, dashboard, healthy) for c in module.cases()]
    ids = [c.id for c in cases]
    assert len(set(ids)) == len(ids), sorted({i for i in ids if ids.count(i) > 1})
    return cases
