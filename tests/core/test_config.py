"""Every config composes into a valid RunConfig; the schema rejects unknown keys and wrong types."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnts_ray.cli import CONF_DIR, compose, load_config
from nnts_ray.config import ConfigError, RunConfig

GROUPS = ["dataset", "model", "knn", "metrics", "ray", "paths"]


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_of_every_group_composes(group):
    for option in _options(group):
        rc = load_config([f"{group}={option}"])
        assert isinstance(rc, RunConfig)


def test_every_experiment_composes():
    for option in _options("experiment"):
        assert isinstance(load_config([f"experiment={option}"]), RunConfig)


def test_default_is_the_paper_setup_on_digits():
    rc = load_config([])
    assert rc.dataset.name == "digits" and [m.arch for m in rc.models] == ["lenet5"]
    assert rc.k == [15, 100] and rc.knn.metric == "l2" and rc.knn.index == "exact"
    assert rc.metrics.nntp_k == [15] and rc.metrics.alpha == [0]


def test_fingerprint_ignores_where_and_how_fast_but_not_what():
    a = load_config(["run_dir=x", "ray.num_cpus=2", "knn.query_block=10"])
    b = load_config(["run_dir=y"])
    c = load_config(["run_dir=x", "k=[15]"])
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


@pytest.mark.parametrize("override", ["knn.metricz=l2", "+dataset.colour=red", "k=abc", "knn.query_block=many"])
def test_schema_rejects_unknown_keys_and_wrong_types(override):
    with pytest.raises(Exception) as e:
        load_config([override])
    assert isinstance(e.value, ConfigError) or "override" in str(e.value).lower() or "Could not" in str(e.value)


def test_config_dir_is_the_top_level_conf():
    assert CONF_DIR == Path(__file__).resolve().parents[2] / "conf"
    assert compose([]).k == [15, 100]
